"""Errors that stop a run with a clear message; each kind has its own exit code.

A payment-run job reads the exit code to tell what went wrong without parsing text:

| code | meaning |
| --- | --- |
| 0 | done |
| 1 | done, but the run's own check failed (for example `tillit log --verify`) |
| 2 | bad input or bad request: the export, a config, a flag |
| 3 | no usable model: none registered, or its artifacts do not match what was recorded |
| 4 | nothing to score: the export holds no invoices (rows) for the asked period |
"""

EXIT_BAD_INPUT = 2
EXIT_NO_MODEL = 3
EXIT_NOTHING_TO_SCORE = 4


class TillitError(Exception):
    """A problem with the input or the request that the user must fix; never a bug."""

    exit_code: int = EXIT_BAD_INPUT


class ContractError(TillitError):
    """The input folder does not have the tables or columns the data contract requires."""


class QuarantineLimitError(TillitError):
    """Too many rows broke the contract: the export looks broken, so the run stops."""


class ConfigError(TillitError):
    """A config file has an unknown key or a bad value."""


class ModelUnavailableError(TillitError):
    """No model to score with: none registered, or the stored one failed verification."""

    exit_code = EXIT_NO_MODEL


class NothingToScoreError(TillitError):
    """The asked period exists in the calendar but the export has nothing in it."""

    exit_code = EXIT_NOTHING_TO_SCORE
