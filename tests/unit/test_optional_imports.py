"""`pip install tillit` without extras: the CLI and everything `tillit score` uses load no
pyspark, sqlglot or splink, even where those are installed (pandera probes for pyspark)."""

from __future__ import annotations

import subprocess
import sys

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
