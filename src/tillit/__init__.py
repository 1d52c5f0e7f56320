"""tillit: rank home-care invoices for human review before a municipality pays them."""

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import FrameType

__version__ = "0.1.0"
CONTRACT_VERSION = "1.3"


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
            if str(frame.f_globals.get("__name__", "")).partition(".")[0] == "pandera":
                raise ModuleNotFoundError(f"{fullname} is not loaded for pandera by tillit")
            frame = frame.f_back
        return None


if not any(isinstance(finder, _NoSparkForPandera) for finder in sys.meta_path):
    sys.meta_path.insert(0, _NoSparkForPandera())
