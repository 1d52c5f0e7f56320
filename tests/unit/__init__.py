"""Unit tests: exact numbers on small hand-built frames, schemas, refusals (fast)."""
