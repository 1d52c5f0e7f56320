"""Running the real `tillit` command in a temporary folder, for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tillit as tillit_package


def tillit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m tillit ARGS` in `cwd`, with no MLflow store inherited from outside."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    # The command runs the same tillit as the test (a relative PYTHONPATH would not follow cwd).
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(tillit_package.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "tillit", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """The command succeeded (its output is shown if not)."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def refused(result: subprocess.CompletedProcess[str], *phrases: str) -> str:
    """The command refused with exit 2, a message with every phrase, and no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    return result.stderr
