"""CPU and wall seconds of each feature statement of one month, and the lane it ran on.

Why: the features run in two DuckDB lanes (`features/build.py`); a statement cut in one
lane shortens the stage only if that lane is the longer one. Each public function of
`tillit.features.queries` that takes the engine is timed with `time.thread_time` (its
lane's CPU) around it; a function that calls another (`provider_features`) includes it.
The source that runs is whatever `tillit` the interpreter imports (set PYTHONPATH to time
another checkout).

Usage:
    python bench/feature_statement_times.py --data WORLD --period 2025-04 [--keep PREFIX]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--period", default="2025-04")
    parser.add_argument(
        "--keep", help="write the features, findings and quarantine to PREFIX-*.parquet"
    )
    args = parser.parse_args()

    from tillit.config import load_config
    from tillit.data.io import read_raw_tables
    from tillit.data.validate import validate_tables
    from tillit.features import build_features, queries

    config = load_config()
    tables = validate_tables(read_raw_tables(args.data, config.input)).tables
    log: list[tuple[str, str, float, float, float]] = []

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*a: Any, **k: Any) -> Any:
            cpu, began = time.thread_time(), time.perf_counter()
            result = function(*a, **k)
            lane = threading.current_thread().name
            log.append((lane, name, time.thread_time() - cpu, began, time.perf_counter() - began))
            return result

        return wrapper

    for name, function in vars(queries).copy().items():
        if _runs_statements(function, queries.__name__) and not name.startswith("_"):
            setattr(queries, name, timed(name, function))
    began, cpu = time.perf_counter(), time.process_time()
    built = build_features(tables, args.period, config.features)
    print(
        f"build_features: wall {time.perf_counter() - began:.2f} s, CPU {time.process_time() - cpu:.2f} s"
    )
    for lane, name, seconds, start, wall in sorted(log, key=lambda entry: entry[3]):
        print(
            f"{lane[:16]:16s} {name:30s} CPU {seconds:6.2f} s  from {start - began:6.2f} s  wall {wall:6.2f} s"
        )
    if args.keep:
        built.features.to_parquet(f"{args.keep}-features.parquet")
        built.findings.to_parquet(f"{args.keep}-findings.parquet")
        built.quarantine.to_parquet(f"{args.keep}-quarantine.parquet")


def _runs_statements(function: Any, module: str) -> bool:
    """A function of the queries module whose first parameter is the engine (`con`)."""
    if not inspect.isfunction(function) or function.__module__ != module:
        return False
    return next(iter(inspect.signature(function).parameters), "") == "con"


if __name__ == "__main__":
    main()
