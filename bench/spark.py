"""`make bench-spark`: a large simulated month, partitioned on disk, featured on Spark, scored.

Why: the national pool (about 230 000 home-care clients, 10-15 M visits a month) does not fit
one machine's DuckDB; this measures the Spark path end to end. Municipalities are simulated
one at a time (never the whole country in memory) into Parquet folders partitioned as
`municipality=.../month=YYYY-MM` (visits, invoices) and `municipality=...` (the registers);
identifiers get the municipality as prefix so they stay unique. Features are then built on
Spark (local mode here, `--master` for a cluster) straight from those folders, and scored on
the driver with a registered model (trained on a small world first unless `--store` names
one). Writes wall and CPU seconds per phase, peak memory after training (RSS of this Python
process plus its children, the Spark driver JVM among them, sampled every 0.2 s) and the
cluster size used.

    python bench/spark.py --municipalities 5 --clients 3000 --out bench/spark.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

ID_COLUMNS = ("provider_id", "client_id", "staff_id", "visit_id", "invoice_id", "grant_id")
BY_MONTH = {"visits": "start_at", "invoices": "period"}
REGISTERS = ("providers", "provider_events", "provider_persons", "clients", "grants")


class PeakMemory:
    """The largest summed RSS of this process and its children (the JVM) seen so far."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def jvm_cpu_seconds() -> float:
    """CPU of live children (the Spark JVM is never waited for, so RUSAGE_CHILDREN misses it)."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def simulate_partitioned(
    root: Path, municipalities: int, clients: int, start: str, period: str
) -> dict:
    """Simulate and validate each municipality, write its Parquet partitions, drop it.

    Resumable: a municipality whose folders are complete (`_done/<code>`) is kept, so a
    national pool interrupted half way is finished, not redrawn. Its row counts are kept
    beside it.
    """
    from tillit.config import SimulationConfig
    from tillit.data.validate import validate_tables
    from tillit.features.spark_engine import spark_ready
    from tillit.simulate import simulate

    counts: dict[str, int] = {}
    done = root / "_done"
    done.mkdir(parents=True, exist_ok=True)
    for k in range(municipalities):
        code = f"K{k:03d}"
        marker = done / f"{code}-{clients}.json"
        if marker.exists():
            for name, n in json.loads(marker.read_text("utf-8")).items():
                counts[name] = counts.get(name, 0) + n
            continue
        mine: dict[str, int] = {}
        world = simulate(SimulationConfig(seed=100 + k, clients=clients, months=2, start=start))
        tables = validate_tables(world.tables).tables
        for name, frame in tables.items():
            if name not in (*REGISTERS, "hospital_stays", "visits", "invoices", "tariffs"):
                continue
            frame = spark_ready(frame)  # times in microseconds, as Spark reads Parquet
            for column in (*ID_COLUMNS, "person_id"):
                if column in frame:
                    frame[column] = code + "-" + frame[column].astype("str")
            mine[name] = len(frame)
            if name == "visits":
                mine["visits_in_scored_month"] = int(
                    (frame["start_at"].dt.strftime("%Y-%m") == period).sum()
                )
            if name in BY_MONTH:
                month = (
                    frame["start_at"].dt.strftime("%Y-%m")
                    if name == "visits"
                    else frame["period"].astype("str")
                )
                for value, part in frame.groupby(month.to_numpy()):
                    path = root / name / f"municipality={code}" / f"month={value}" / "part.parquet"
                    _write(part, path)
            else:
                # Tariffs too: each municipality its own, joined on municipality, service
                # and year (the folder's `municipality=` partition gives the column).
                _write(frame, root / name / f"municipality={code}" / "part.parquet")
        del world, tables
        marker.write_text(json.dumps(mine), "utf-8")
        for name, n in mine.items():
            counts[name] = counts.get(name, 0) + n
    return counts


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def train_small_model(work: Path, seed: int = 11) -> Path:
    """A champion trained on a small simulated municipality, in `work/models`."""
    data, store = work / "train-data", work / "models"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    for args in (
        ["simulate", "--out", data, "--seed", seed, "--clients", 300, "--months", 6, "--quiet"],
        ["train", "--data", data, "--store", store, "--quiet"],
        ["promote", "--store", store],
    ):
        subprocess.run(
            [sys.executable, "-m", "tillit", *map(str, args)], check=True, env=env, cwd=work
        )
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--municipalities", type=int, default=5)
    parser.add_argument("--clients", type=int, default=3000, help="per municipality")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--start", default="2025-05", help="the month before the scored one")
    parser.add_argument("--store", type=Path, default=None, help="default: train a small one")
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument(
        "--pool", type=Path, default=None, help="the simulated pool's folder, kept and reused"
    )
    parser.add_argument("--score-on", choices=("driver", "executors"), default="driver")
    parser.add_argument("--simulate-only", action="store_true", help="write the pool, stop")
    parser.add_argument("--out", type=Path, default=Path("bench/spark.json"))
    args = parser.parse_args()

    from tillit.config import TillitConfig
    from tillit.features.queries import month_index, period_of

    period = period_of(month_index(args.start) + 1)
    work = args.work or Path(tempfile.mkdtemp(prefix="tillit-bench-spark-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "period": period,
        "size": {"municipalities": args.municipalities, "clients": 0},
        "seconds": {},
        "cpu_seconds": {},
    }
    clock, cpu = time.perf_counter(), cpu_seconds()

    def lap(name: str) -> None:
        nonlocal clock, cpu
        now, used = time.perf_counter(), cpu_seconds() + jvm_cpu_seconds()
        result["seconds"][name] = round(now - clock, 1)
        result["cpu_seconds"][name] = round(used - cpu, 1)
        clock, cpu = now, used
        print(f"{name}: {result['seconds'][name]} s", flush=True)

    data = args.pool or work / "pool"
    if args.simulate_only:
        simulate_partitioned(data, args.municipalities, args.clients, args.start, period)
        return
    store = args.store or train_small_model(work)
    lap("train_small_model" if args.store is None else "store")
    memory = PeakMemory()  # from here on: the model's training is not the bench
    counts = simulate_partitioned(data, args.municipalities, args.clients, args.start, period)
    result["size"] = {"municipalities": args.municipalities, "clients": int(counts["clients"])}
    result["rows"] = counts
    lap("simulate_partitioned")

    from tillit.features import build_features, feature_catalog
    from tillit.features.spark_engine import SparkEngine, start_session

    config = TillitConfig()
    session = start_session(args.master, {"spark.driver.memory": args.driver_memory})
    context = session.sparkContext
    result["cluster"] = {
        "master": args.master,
        "default_parallelism": context.defaultParallelism,
        "driver_memory": args.driver_memory,
        "shuffle_partitions": session.conf.get("spark.sql.shuffle.partitions"),
        "scored_on": args.score_on,
    }
    engine = SparkEngine(session, owns_session=True)
    lap("spark_start")
    tables = {
        name: data / name
        for name in (*REGISTERS, "hospital_stays", "visits", "invoices", "tariffs")
    }
    from tillit.ops import tracking
    from tillit.review.score import ModelIdentity, score_month

    client = tracking.connect(store)
    ref = tracking.resolve_alias(client, config.training.model_name, "champion")
    model = tracking.load_risk_model(client, ref, store)  # integrity-verified
    risk_scores = None
    try:
        feature_set = build_features(tables, period, config.features, engine=engine)
        result["statement_seconds"] = [(s, round(t, 2)) for s, t in engine.seconds]
        lap("features_on_spark")
        if args.score_on == "executors":
            from tillit.review.spark_scores import executor_risk

            risk_scores = executor_risk(session, client, store, ref, model, feature_set.features)
            lap("risk_on_executors")
    finally:
        engine.close()
    held = pd.DataFrame(
        columns=["invoice_id", "provider_id", "client_id", "period", "service_type",
                 "amount_sek", "reason"]
    )  # fmt: skip
    scored = score_month(
        model,
        feature_set.features,
        feature_set.findings,
        held,
        config.review,
        ModelIdentity(ref.name, ref.version, ref.run_id),
        config.scoring,
        feature_catalog(config.features),
        risk_scores=risk_scores,
    )
    del feature_set  # what the driver holds from here on: the risk list and explanations
    result["rows"]["invoices_scored"] = int(scored.summary["invoices_scored"])
    result["rows"]["flagged"] = int(scored.summary["flagged"])
    lap("score_and_explain_on_driver" if risk_scores is None else "rank_and_explain_on_driver")
    result["seconds"]["total_after_training"] = round(
        sum(v for k, v in result["seconds"].items() if k not in ("train_small_model", "store")), 1
    )
    result["peak_rss_gb"] = round(memory.stop() / 1e9, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps({k: result[k] for k in ("size", "seconds", "peak_rss_gb")}, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
