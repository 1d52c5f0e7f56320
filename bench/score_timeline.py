"""Timeline of one in-process `tillit score`: when each named step ran, on which thread, its CPU.

Why: the month's wall time is its critical path, and a step on a side thread shortens it only
while it overlaps work of the main thread. Every function of `tillit` named in STEPS is
wrapped (where it is defined and wherever it was imported by name) with `time.perf_counter`
and `time.thread_time` (the CPU of the thread that ran it); steps over 40 ms are printed in
the order they started. On a shared machine read the CPU column: the wall column says how
busy the machine was. The source that runs is whatever `tillit` the interpreter imports (set
PYTHONPATH to time another checkout).

Usage:
    python bench/score_timeline.py --data WORLD --store STORE --out OUT [--period 2025-04]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import pkgutil
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STEPS = frozenset(
    [
        "read_raw_tables",
        "validate_tables",
        "connect",
        "resolve_alias",
        "load_risk_model",
        "_import_explainers",
        "build_features",
        "load_tables",
        "visit_aggregates",
        "grant_months",
        "history_features",
        "provider_registration_habits",
        "own_history",
        "visit_key_months",
        "visit_own_history",
        "keytag_own_history",
        "carer_overlaps",
        "staff_overlaps",
        "staff_aggregates",
        "staff_behaviour",
        "staff_elsewhere",
        "provider_features",
        "comparison_evidence",
        "invoice_frame",
        "evidence_frames",
        "_describe",
        "_finding_flags",
        "_add_peer_z",
        "findings_table",
        "prevailing_rate",
        "_evidence_columns",
        "load_data",
        "score_month",
        "components",
        "explain",
        "lightgbm_path_contributions",
        "_path_dependent_treeshap",
        "top_reasons",
        "reasons",
        "combine_contributions",
        "peer_medians",
        "_long_explanations",
        "hours_and_money_in_dispute",
        "provider_cases",
        "mark_incomplete_evidence",
        "_month_drift",
        "write_frame",
        "_write_risk_list_csv",
        "render_report",
        "write_manifest_and_record",
        "_log_drift",
        "_explain",
    ]
)
SKIPPED_MODULES = ("spark", "simulate", "linkage", "__main__")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--period", default="2025-04")
    args = parser.parse_args()

    import tillit

    for module in pkgutil.walk_packages(tillit.__path__, "tillit."):
        if not any(part in module.name for part in SKIPPED_MODULES):
            importlib.import_module(module.name)
    began = time.perf_counter()
    log: list[tuple[str, str, float, float, float]] = []
    wrapped: dict[Callable[..., Any], Callable[..., Any]] = {}

    def timed(function: Callable[..., Any], name: str) -> Callable[..., Any]:
        if function not in wrapped:

            @functools.wraps(function)
            def wrapper(*a: Any, **k: Any) -> Any:
                cpu, start = time.thread_time(), time.perf_counter()
                try:
                    return function(*a, **k)
                finally:
                    thread = threading.current_thread().name
                    end = time.perf_counter()
                    log.append((thread, name, start - began, end - began, time.thread_time() - cpu))

            wrapped[function] = wrapper
        return wrapped[function]

    for module in [m for name, m in sys.modules.items() if name.startswith("tillit")]:
        for key, value in list(vars(module).items()):
            if key in STEPS and inspect.isfunction(value) and value.__module__.startswith("tillit"):
                setattr(module, key, timed(value, f"{value.__module__.split('.')[-1]}.{key}"))
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                for attribute, method in list(vars(value).items()):
                    if attribute in STEPS and inspect.isfunction(method):
                        setattr(value, attribute, timed(method, f"{value.__name__}.{attribute}"))

    from tillit.cli import app

    cpu = time.process_time()
    command = ["score", "--data", str(args.data), "--period", args.period]
    command += ["--out", str(args.out), "--store", str(args.store), "--overwrite", "-q"]
    try:
        app(command, standalone_mode=False)
    finally:
        for thread, name, start, end, seconds in sorted(log, key=lambda entry: entry[2]):
            if end - start > 0.04:
                print(
                    f"{thread[:18]:18s} {name:42s} {start:7.2f} -> {end:7.2f}  "
                    f"wall {end - start:6.2f}  CPU {seconds:6.2f}"
                )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"whole command: wall {time.perf_counter() - began:.2f} s, process CPU "
            f"{time.process_time() - cpu:.2f} s, peak {peak} kB"
        )


if __name__ == "__main__":
    main()
