"""`pip install tillit` without extras: the CLI and everything `tillit score` uses load no
pyspark, sqlglot or splink, even where those are installed (pandera probes for pyspark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import REPO

SCORE_MODULES = (
    "tillit.cli",
    "tillit.jobs.score",
    "tillit.jobs.common",
    "tillit.features",
    "tillit.features.engine",
    "tillit.features.providers",
    "tillit.data.validate",
    "tillit.review.score",
    "tillit.review.report",
    "tillit.modelling.explain",
    "tillit.ops.tracking",
    "tillit.ops.integrity",
)


def test_scoring_modules_import_no_spark_sqlglot_or_splink() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in SCORE_MODULES)
        + "import pandera.pandas\n"
        + "from tillit.features.schema import InvoiceFeatures\n"
        + "InvoiceFeatures.to_schema()\n"
        + "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyspark', 'sqlglot', 'splink'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == "[]"


def test_score_refuses_an_unknown_engine_and_a_master_without_spark(tmp_path: Path) -> None:
    from tests.cli import refused, tillit_here

    data = tmp_path / "data"
    data.mkdir()
    common = ("score", "--data", data, "--period", "2025-06", "--out", tmp_path / "out")
    refused(tillit_here(*common, "--engine", "polars"), "--engine must be duckdb or spark")
    refused(tillit_here(*common, "--spark-master", "local[1]"), "--spark-master needs")
    refused(tillit_here(*common, "--score-on", "executors"), "--score-on executors needs")
    refused(tillit_here(*common, "--score-on", "gpu"), "--score-on must be driver or executors")


def test_connect_names_the_missing_extra_or_an_unknown_engine() -> None:
    from tillit.features.engine import DuckDBEngine, connect

    engine = connect("duckdb")
    assert isinstance(engine, DuckDBEngine)
    assert engine.fetch("SELECT 41 + 1 AS x")["x"].tolist() == [42]
    engine.close()
    with pytest.raises(ValueError, match="unknown engine"):
        connect("polars")
