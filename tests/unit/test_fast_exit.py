"""The CLI's process ends as an exit should, without the interpreter's teardown.

`tillit.cli._leave` skips tearing the modules down (a second of CPU after a scoring
run's last output); what an exit must do still happens: exit handlers, flushed
streams, the exit code. A `score` without Spark keeps pyspark out of MLflow's and
SHAP's probes too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import REPO

_ENV = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=_ENV
    )


def test_leave_runs_the_exit_handlers_flushes_and_keeps_the_code(tmp_path: Path) -> None:
    code = (
        "import atexit, sys\n"
        "from pathlib import Path\n"
        "from tillit.cli import _leave\n"
        "atexit.register(lambda: Path('handler.txt').write_text('ran'))\n"
        "sys.stdout.write('no newline yet')\n"
        "sys.stderr.write('said')\n"
        "_leave(3)\n"
        "print('never')\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 3
    assert done.stdout == "no newline yet"
    assert done.stderr == "said"
    assert (tmp_path / "handler.txt").read_text() == "ran"


def test_leave_waits_for_a_working_thread_as_a_plain_exit_does(tmp_path: Path) -> None:
    code = (
        "import threading, time\n"
        "from pathlib import Path\n"
        "from tillit.cli import _leave\n"
        "def work():\n"
        "    time.sleep(0.3)\n"
        "    Path('thread.txt').write_text('done')\n"
        "threading.Thread(target=work).start()\n"
        "_leave(0)\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread.txt").read_text() == "done"


def test_the_command_line_keeps_its_exit_codes(tmp_path: Path) -> None:
    score = [sys.executable, "-m", "tillit", "score", "--data", str(tmp_path / "none")]
    refused = subprocess.run(
        [*score, "--period", "2025-06", "--out", str(tmp_path / "out"), "--engine", "polars"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_ENV,
    )
    assert refused.returncode == 2, refused.stderr
    assert "--engine must be duckdb or spark" in refused.stderr
    assert "Traceback" not in refused.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "tillit", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_ENV,
    )
    assert helped.returncode == 0
    assert "score" in helped.stdout


def test_a_score_without_spark_keeps_pyspark_out_of_mlflow(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "{keep}"
        "import mlflow.types.schema as schema\n"
        "print(schema.HAS_PYSPARK, 'pyspark' in sys.modules)\n"
    )
    kept = _python(probe.format(keep="import tillit; tillit.keep_spark_from('mlflow')\n"), REPO)
    assert kept.stdout.split() == ["False", "False"], kept.stderr
    plain = _python(probe.format(keep="import tillit\n"), REPO)
    installed = _python("import importlib.util as u; print(bool(u.find_spec('pyspark')))", REPO)
    # Elsewhere MLflow finds pyspark as before, where it is installed.
    assert plain.stdout.split() == [installed.stdout.strip()] * 2, plain.stderr


def test_output_that_cannot_be_written_ends_with_120_as_a_plain_exit_does(tmp_path: Path) -> None:
    code = "import sys\nfrom tillit.cli import _leave\nsys.stdout.write('x' * 10)\n_leave(0)\n"
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", code], stdout=full, env=_ENV, cwd=tmp_path)
    assert done.returncode == 120


def test_importing_tillit_turns_mlflow_telemetry_off_before_mlflow_decides(
    tmp_path: Path,
) -> None:
    probe = (
        "import tillit, mlflow\n"
        "from mlflow.telemetry import get_telemetry_client\n"
        "print(get_telemetry_client() is None)\n"
    )
    done = _python(probe, tmp_path)
    assert done.stdout.split() == ["True"], done.stderr
