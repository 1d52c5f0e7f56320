"""Quality floors and determinism on simulated municipalities, trained in process."""
