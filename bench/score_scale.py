"""Time `tillit score` on one large month, as a user runs it; what `make bench-score-scale` runs.

The month is the 1.5 x Stockholm messy month of issue 22: `tillit simulate --profile
messy --seed 11 --clients 13600 --months 4` gives 20,591 invoices and 907,694 visits
in 2025-04. With `--prepare`, a missing world is simulated and a model trained and
promoted into the store once (minutes); later runs reuse both.

Each run is a fresh `python -m tillit score` child process; the parent takes its wall
time, user and system CPU seconds and peak resident memory from `os.wait4` (what
`/usr/bin/time -v` reports), and the stage timings from the run's manifest.json.
`--reference DIR` compares the run's risk list and explanations with an earlier run's
(bit for bit, pandas `equals` with the same dtypes) and report.html byte for byte: a
speed-up must not change a result. The source that runs is whatever `tillit` the
interpreter imports (set PYTHONPATH to time a worktree).

Usage:
    python bench/score_scale.py --data bench/data/score-scale --store bench/data/score-scale-store \\
        --prepare --repeat 2 --out bench/score_scale.json [--reference runs/before]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORLD = {"profile": "messy", "seed": 11, "clients": 13600, "months": 4, "start": "2025-01"}
PERIOD = "2025-04"
TARGET = {"wall_seconds": 15.0, "peak_rss_mb": 3 * 1024.0}
COMPARED_FRAMES = ("risk_list.parquet", "explanations.parquet", "quarantine.parquet")
COMPARED_BYTES = ("report.html", "risk_list.csv")


def _tillit(python: str, *args: str) -> list[str]:
    return [python, "-m", "tillit", *args]


def prepare(data: Path, store: Path, python: str) -> None:
    """Simulate the world and train and promote its model, unless they are there already."""
    if not (data / "invoices.parquet").is_file():
        subprocess.run(
            _tillit(
                python,
                "simulate",
                "--out",
                str(data),
                "--quiet",
                *[f"--{key}={value}" for key, value in WORLD.items()],
            ),
            check=True,
        )
    if not (store / "mlflow.db").is_file():
        subprocess.run(
            _tillit(python, "train", "--data", str(data), "--store", str(store), "-q"), check=True
        )
        subprocess.run(_tillit(python, "promote", "--store", str(store)), check=True)


def timed_score(data: Path, store: Path, period: str, out: Path, python: str) -> dict[str, Any]:
    """One `tillit score` child: wall, CPU and peak memory, and the manifest's stage timings."""
    argv = _tillit(
        python,
        "score",
        "--data",
        str(data),
        "--period",
        period,
        "--out",
        str(out),
        "--store",
        str(store),
        "-q",
    )
    began = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    exit_code = os.waitstatus_to_exitcode(status)
    run: dict[str, Any] = {
        "exit_code": exit_code,
        "wall_seconds": round(wall, 2),
        "user_seconds": round(usage.ru_utime, 2),
        "system_seconds": round(usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    if exit_code != 0:
        run["stderr_tail"] = stderr.strip().splitlines()[-10:]
        return run
    manifest = json.loads((out / "manifest.json").read_text())
    run["stage_seconds"] = manifest["timings_seconds"]
    run["counts"] = manifest["counts"]
    return run


def compare_outputs(reference: Path, out: Path) -> dict[str, str]:
    """Each compared output: identical, different, or absent in both."""
    import pandas as pd

    verdicts = {}
    for name in COMPARED_FRAMES:
        a, b = reference / name, out / name
        if not a.exists() and not b.exists():
            verdicts[name] = "absent in both"
            continue
        if not a.exists() or not b.exists():
            verdicts[name] = "different (present in one only)"
            continue
        x, y = pd.read_parquet(a), pd.read_parquet(b)
        same = (
            x.equals(y) and list(x.dtypes) == list(y.dtypes) and list(x.columns) == list(y.columns)
        )
        verdicts[name] = "identical" if same else "different"
    for name in COMPARED_BYTES:
        digests = {
            hashlib.sha256((folder / name).read_bytes()).hexdigest() for folder in (reference, out)
        }
        verdicts[name] = "identical" if len(digests) == 1 else "different"
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the world's contract folder")
    parser.add_argument("--store", type=Path, required=True, help="MLflow store with a champion")
    parser.add_argument("--period", default=PERIOD)
    parser.add_argument("--out", type=Path, default=Path("bench/score_scale.json"))
    parser.add_argument("--repeat", type=int, default=1, help="runs, back to back")
    parser.add_argument("--prepare", action="store_true", help="simulate and train if missing")
    parser.add_argument("--reference", type=Path, help="an earlier score output to compare with")
    parser.add_argument("--keep", type=Path, help="keep the last run's output folder here")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs tillit")
    args = parser.parse_args(argv)

    if args.prepare:
        prepare(args.data, args.store, args.python)
    runs = []
    identity: dict[str, str] | None = None
    with tempfile.TemporaryDirectory(prefix="tillit-score-scale-") as scratch:
        for i in range(args.repeat):
            out = Path(scratch) / f"run{i}"
            run = timed_score(args.data, args.store, args.period, out, args.python)
            runs.append(run)
            print(json.dumps(run), flush=True)
            if run["exit_code"] != 0:
                break
            if args.reference is not None:
                identity = compare_outputs(args.reference, out)
            if args.keep is not None and i == args.repeat - 1:
                shutil.rmtree(args.keep, ignore_errors=True)
                shutil.copytree(out, args.keep)
    ok = [r for r in runs if r["exit_code"] == 0]
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_1_5_15": os.getloadavg(),
        },
        "world": {**WORLD, "data": str(args.data), "period": args.period},
        "target": TARGET,
        "runs": runs,
        "best_wall_seconds": min((r["wall_seconds"] for r in ok), default=None),
        "max_peak_rss_mb": max((r["peak_rss_mb"] for r in ok), default=None),
        "identical_to_reference": identity,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return (
        0
        if len(ok) == len(runs)
        and (identity is None or set(identity.values()) <= {"identical", "absent in both"})
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
