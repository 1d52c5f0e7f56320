"""Running the real `tillit` command, for the end-to-end tests.

`tillit` starts `python -m tillit` in a folder of its own, the way a user runs it;
`tillit_here` runs the same Typer app in this process (same options, messages and exit
codes, without paying a new interpreter and MLflow's import per call) for fixtures that
only need what the commands write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tillit as tillit_package

_STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def tillit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m tillit ARGS` in `cwd`, with no MLflow store inherited from outside."""
    env = {k: v for k, v in os.environ.items() if k not in _STORE_VARIABLES}
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


def tillit_here(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `tillit ARGS` through the Typer app in this process; give every path absolute.

    A crash is raised as it is (a traceback, not an exit code); no MLflow store is
    left in the environment afterwards.
    """
    from typer.testing import CliRunner

    from tillit.cli import app
    from tillit.ops.tracking import uri_variables_kept

    with uri_variables_kept():
        result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(
        ["tillit", *map(str, args)], result.exit_code, result.stdout, result.stderr
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
