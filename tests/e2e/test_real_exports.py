"""Real exports through the real CLI: a Swedish Excel CSV, time zones, any row order, lineage.

The same municipality, written the way different systems write it, must give the same
risk list byte for byte. Shares one trained municipality (`trained_export`) with the fuzz suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.cli import ok, tillit
from tests.conftest import EXPORT_PERIOD as PERIOD


def _score(world: dict, data: Path, out: Path, *extra: str) -> Path:
    ok(
        tillit(
            "score", "--data", data, "--period", PERIOD, "--out", out, "--store", world["store"],
            *extra, cwd=world["root"],
        )
    )  # fmt: skip
    return out


def _same_risk_list(world: dict, out: Path) -> None:
    reference = world["reference"]
    assert (out / "risk_list.csv").read_bytes() == (reference / "risk_list.csv").read_bytes()
    assert (out / "risk_list.parquet").exists()


def _tables(data: Path) -> dict[str, pd.DataFrame]:
    return {path.stem: pd.read_parquet(path) for path in data.glob("*.parquet")}


def test_a_swedish_excel_export_validates_clean_and_scores_identically(trained_export, tmp_path):
    excel = tmp_path / "excel"
    excel.mkdir()
    for name, frame in _tables(trained_export["data"]).items():
        if name == "truth":
            continue
        frame.to_csv(excel / f"{name}.csv", index=False, sep=";", decimal=",", encoding="cp1252")
    assert b";" in (excel / "invoices.csv").read_bytes().splitlines()[1]
    validated = ok(tillit("validate", "--data", excel, "--out", tmp_path / "v", cwd=tmp_path))
    report = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert report["rows_quarantined"] == 0, validated.stdout
    _same_risk_list(trained_export, _score(trained_export, excel, tmp_path / "s"))


def test_time_zone_aware_exports_score_like_local_time(trained_export, tmp_path):
    tables = _tables(trained_export["data"])
    aware = tmp_path / "aware"
    aware.mkdir()
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    for name, frame in tables.items():
        frame.to_parquet(aware / f"{name}.parquet", index=False)
        if name != "visits":
            frame.to_parquet(offsets / f"{name}.parquet", index=False)
    visits = tables["visits"].copy()
    for column in ("start_at", "end_at"):
        visits[column] = visits[column].dt.tz_localize("Europe/Stockholm", ambiguous="NaT")
    assert visits[["start_at", "end_at"]].notna().all().all()  # no visit in the repeated hour
    utc = visits.assign(**{c: visits[c].dt.tz_convert("UTC") for c in ("start_at", "end_at")})
    utc.to_parquet(aware / "visits.parquet", index=False)
    # CSV: every other row with its local offset (+01:00 or +02:00), the rest naive local time
    text = visits.copy()
    for column in ("start_at", "end_at"):
        iso = (
            visits[column]
            .dt.strftime("%Y-%m-%dT%H:%M:%S%z")
            .str.replace(r"(\d{2})(\d{2})$", r"\1:\2", regex=True)
        )
        naive = tables["visits"][column].dt.strftime("%Y-%m-%dT%H:%M:%S")
        text[column] = iso.where(visits.index % 2 == 0, naive)
    text.to_csv(offsets / "visits.csv", index=False)
    assert "+02:00" in (offsets / "visits.csv").read_text()
    _same_risk_list(trained_export, _score(trained_export, aware, tmp_path / "s1"))
    _same_risk_list(trained_export, _score(trained_export, offsets, tmp_path / "s2"))


def test_any_row_order_of_any_table_gives_the_same_risk_list(trained_export, tmp_path):
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for seed, (name, frame) in enumerate(sorted(_tables(trained_export["data"]).items())):
        frame.sample(frac=1.0, random_state=100 + seed).to_parquet(
            shuffled / f"{name}.parquet", index=False
        )
    _same_risk_list(trained_export, _score(trained_export, shuffled, tmp_path / "s"))


def test_quarantined_evidence_is_marked_and_malformed_periods_are_listed(trained_export, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    tables = _tables(trained_export["data"])
    invoices, visits = tables["invoices"], tables["visits"]
    june = invoices[invoices["period"] == PERIOD]
    target = june.iloc[0]
    own = visits[
        (visits["provider_id"] == target["provider_id"])
        & (visits["client_id"] == target["client_id"])
        & (visits["start_at"].dt.strftime("%Y-%m") == PERIOD)
    ].index[:2]
    visits.loc[own, "method"] = "fax"
    invoices.loc[june.index[1], "period"] = "2025-6"
    invoices.loc[june.index[2], "period"] = None
    for name, frame in tables.items():
        frame.to_parquet(broken / f"{name}.parquet", index=False)
    out = _score(trained_export, broken, tmp_path / "s")
    risk = pd.read_parquet(out / "risk_list.parquet").set_index("invoice_id")
    assert risk.loc[target["invoice_id"], "evidence_incomplete"]
    assert risk.loc[target["invoice_id"], "quarantine_rules"] == (
        "visits: method must be one of nfc, app, manual"
    )
    assert risk["evidence_incomplete"].sum() == 1
    misread, missing = june["invoice_id"].iloc[1], june["invoice_id"].iloc[2]
    assert risk.loc[misread, "status"] == "quarantined"
    assert "period read as 2025-06" in risk.loc[misread, "reasons"]
    assert "cannot be placed" in risk.loc[missing, "reasons"]
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["received"] == len(june) == counts["scored"] + counts["quarantined"]
    assert set(risk.index) == set(june["invoice_id"])
    assert "Evidence incomplete" in (out / "report.html").read_text()


def _start(world: dict, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tillit", *map(str, args), "--store", str(world["store"])],
        cwd=world["root"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> None:
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stdout + stderr


def test_concurrent_scores_and_a_training_run_share_one_store(world_copy, tmp_path):
    """Training writes to the store: this test works on a copy of the session's world."""
    data = world_copy["data"]
    first = _start(world_copy, "score", "--data", data, "--period", PERIOD, "--out", tmp_path / "a")
    second = _start(
        world_copy, "score", "--data", data, "--period", PERIOD, "--out", tmp_path / "b"
    )
    _finish(first)
    _finish(second)
    for out in (tmp_path / "a", tmp_path / "b"):
        _same_risk_list(world_copy, out)
    training = _start(world_copy, "train", "--data", data)
    third = _start(world_copy, "score", "--data", data, "--period", PERIOD, "--out", tmp_path / "c")
    _finish(third)
    _finish(training)
    _same_risk_list(world_copy, tmp_path / "c")
    log = ok(tillit("log", "--store", world_copy["store"], cwd=world_copy["root"]))
    assert "hash chain intact" in log.stdout
