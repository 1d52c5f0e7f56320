"""CPU seconds per stage of one `tillit score`: what the main thread spent, and the process.

Why: on a shared machine wall time says how busy the machine was; CPU seconds do not.
The main thread's CPU per stage is the run's critical path as two free cores would see it
(work on other threads overlaps it); the process's CPU is all the work done. Each stage
ends where the score job's own clock (`StageClock.lap`) ends it, so the stages are the
manifest's. The source that runs is whatever `tillit` the interpreter imports (set
PYTHONPATH to profile another checkout).

Usage:
    python bench/score_cpu_profile.py --data WORLD --store STORE --period 2025-04 --out OUT
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--period", default="2025-04")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from tillit.jobs import common

    stages: dict[str, dict[str, float]] = {}
    last = {"thread": time.thread_time(), "process": time.process_time()}
    lap = common.StageClock.lap

    def timed_lap(self: common.StageClock, name: str) -> None:
        lap(self, name)
        now = {"thread": time.thread_time(), "process": time.process_time()}
        stages[name] = {
            "main_thread_cpu": round(now["thread"] - last["thread"], 2),
            "process_cpu": round(now["process"] - last["process"], 2),
        }
        last.update(now)

    common.StageClock.lap = timed_lap  # type: ignore[method-assign]
    from tillit.cli import app

    started = time.perf_counter()
    try:
        command = ["score", "--data", str(args.data), "--period", args.period]
        command += ["--out", str(args.out), "--store", str(args.store), "--overwrite", "-q"]
        app(command, standalone_mode=False)
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(
            json.dumps(
                {
                    "stages": stages,
                    "main_thread_cpu": round(time.thread_time(), 2),
                    "process_cpu": round(usage.ru_utime + usage.ru_stime, 2),
                    "wall_seconds_from_cli": round(time.perf_counter() - started, 2),
                    "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                },
                indent=1,
            ),
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
