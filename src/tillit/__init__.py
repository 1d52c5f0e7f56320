"""tillit: rank home-care invoices for human review before a municipality pays them."""

import os
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import FrameType

__version__ = "0.1.0"
CONTRACT_VERSION = "1.3"

# No usage reports from MLflow to its makers: a store of a municipality's invoices stays
# on its machine. MLflow decides at its own import, so it is said before any command,
# test or notebook can import it (a user's explicit setting is kept).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# The packages whose probes for pyspark are refused (see `_NoSparkForPandera`).
_SPARK_REFUSED_TO = {"pandera"}


def keep_spark_from(*packages: str) -> None:
    """Refuse pyspark to these packages' probes too, in a process that will not start Spark.

    Why: MLflow and SHAP import pyspark when it is installed (for Spark types and Spark
    models), a quarter of a second of CPU and more modules to tear down, in a run that
    uses neither. Only for a whole process that asks for no Spark: the packages keep
    what they found for as long as the process lives.
    """
    _SPARK_REFUSED_TO.update(packages)


class _NoSparkForPandera(MetaPathFinder):
    """Refuse pyspark to pandera's probes for it, and to nothing else.

    Why: pandera imports `pyspark.pandas` whenever pyspark is installed (at start-up and
    when it builds a schema, for pandas-on-Spark types tillit does not use). With the `spark` extra installed that costs seconds
    of start-up in every command and loads Spark where no Spark is asked for; tillit
    imports pyspark only in `tillit.features.spark_engine`, when `--engine spark` asks.
    """

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] != "pyspark":
            return None
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            importer = str(frame.f_globals.get("__name__", "")).partition(".")[0]
            if importer in _SPARK_REFUSED_TO:
                raise ModuleNotFoundError(f"{fullname} is not loaded for {importer} by tillit")
            frame = frame.f_back
        return None


if not any(isinstance(finder, _NoSparkForPandera) for finder in sys.meta_path):
    sys.meta_path.insert(0, _NoSparkForPandera())
