"""tillit's tests: tests/unit, tests/quality and tests/e2e (docs/testing.md)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
"""The repository's root, wherever a test file sits below tests/."""
