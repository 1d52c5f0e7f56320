"""Table mode: the spec, the check at the door, point-in-time history, training, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests import REPO
from tests.cli import ok, refused, tillit, tillit_here
from tests.history_oracle import numpy_entity_history
from tillit.config import TrainingConfig, ValidationConfig
from tillit.data.validate import check_quarantine_limit
from tillit.errors import ContractError, QuarantineLimitError
from tillit.tables.features import entity_history, history_feature_names
from tillit.tables.simulate import simulate_table
from tillit.tables.spec import SpecError, check_table, load_spec, parse_spec
from tillit.tables.train import TableTrainingResult, train_table

SPECS = REPO / "configs" / "tables"
CARD = {
    "name": "cards",
    "id": "TRANSACTION_ID",
    "time": "TX_DATETIME",
    "amount": "TX_AMOUNT",
    "label": "TX_FRAUD",
    "label_delay": 7,
    "entities": ["CUSTOMER_ID", "TERMINAL_ID"],
    "protected": ["CUSTOMER_AGE_BAND"],
}


# --------------------------------------------------------------------------- the spec


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"colour": "red"}, "colour", "unknown key"),
        ({"period": "fortnight"}, "period", "'day', 'week' or 'month'"),
        ({"id": None}, "id", ""),
        ({"label_delay": -1}, "label_delay", "greater than or equal to 0"),
        ({"name": "has space"}, "name", "pattern"),
        ({"train": {"from": "2026-02-01", "to": "2026-01-01"}}, "train", "to must not be before"),
        ({"train": {"from": "2026-01-01"}}, "train.to", "required key is missing"),
        ({"capacity": {"capacity_share": 2.0, "capacity_count": None}}, "capacity", "(0, 1]"),
        ({"protected": ["CUSTOMER_ID"]}, "(top level)", "fairness audit only"),
        ({"time": None}, "(top level)", "entities need a time column"),
        ({"windows": [0, 7]}, "(top level)", "windows must be"),
    ],
)
def test_a_bad_spec_is_one_error_naming_the_key(change: dict, key: str, words: str) -> None:
    raw = {**CARD, **change}
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, "spec.yaml")
    message = str(caught.value)
    assert message.startswith(f"spec.yaml: key '{key}'"), message
    assert words in message
    assert "\n" not in message


def test_a_missing_key_is_named() -> None:
    raw = {k: v for k, v in CARD.items() if k != "id"}
    with pytest.raises(SpecError, match="key 'id': required key is missing"):
        parse_spec(raw, "spec.yaml")


def test_shipped_specs_load() -> None:
    for path in sorted(SPECS.glob("*.yaml")):
        spec = load_spec(path)
        assert spec.name == path.stem


def test_spec_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


# --------------------------------------------------------------------------- the door


def _small_card_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "TRANSACTION_ID": [1, 2, 3, 4, 5, 6],
            "TX_DATETIME": ["2026-01-01T10:00:00"] * 3 + ["2026-01-02T10:00:00"] * 3,
            "CUSTOMER_ID": ["C1", "C1", "C2", "C1", "C2", "C2"],
            "TERMINAL_ID": ["T1"] * 6,
            "TX_AMOUNT": ["10.5", "20", "30", "40", "50", "60"],
            "TX_FRAUD": [0, 1, None, 0, 0, 0],
            "CUSTOMER_AGE_BAND": ["18-29"] * 6,
            "ODD": [1.0] * 6,
        }
    )


def test_door_quarantines_each_bad_row_with_its_rule() -> None:
    spec = parse_spec(CARD)
    raw = _small_card_table()
    raw.loc[1, "TX_AMOUNT"] = "lots"
    raw.loc[2, "TX_FRAUD"] = 2
    raw.loc[3, "TRANSACTION_ID"] = 1  # a repeated id: both rows go
    raw.loc[4, "TX_DATETIME"] = "yesterday"
    raw.loc[5, "TX_AMOUNT"] = "-3"
    result = check_table(raw, spec, ValidationConfig())
    rules = set(zip(result.quarantine["column"], result.quarantine["rule"], strict=True))
    assert ("TX_AMOUNT", "type: float") in rules
    assert (
        "TX_FRAUD",
        "TX_FRAUD must be 1 (confirmed), 0 (cleared) or empty (not reviewed)",
    ) in rules
    assert ("TRANSACTION_ID", "TRANSACTION_ID must be unique") in rules
    assert ("TX_DATETIME", "type: timestamp YYYY-MM-DDTHH:MM:SS") in rules
    assert ("TX_DATETIME", "TX_DATETIME must not be empty") not in rules  # said once
    assert ("TX_AMOUNT", "TX_AMOUNT >= 0") in rules
    assert result.summary["cards"]["rows_quarantined"] == 6
    assert result.tables["cards"].empty
    with pytest.raises(QuarantineLimitError, match="cards: 6 of 6 rows quarantined"):
        check_quarantine_limit(result, ValidationConfig())


def test_door_refuses_missing_columns_naming_them() -> None:
    spec = parse_spec(CARD)
    raw = _small_card_table().drop(columns=["TERMINAL_ID", "CUSTOMER_AGE_BAND"])
    with pytest.raises(ContractError, match="TERMINAL_ID, CUSTOMER_AGE_BAND"):
        check_table(raw, spec, ValidationConfig())


def test_door_keeps_good_rows_typed_and_finds_default_features() -> None:
    spec = parse_spec(CARD)
    result = check_table(_small_card_table(), spec, ValidationConfig())
    clean = result.tables["cards"]
    assert len(clean) == 6 and result.quarantine.empty
    assert clean["TX_AMOUNT"].tolist() == [10.5, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert clean["TRANSACTION_ID"].tolist() == ["1", "2", "3", "4", "5", "6"]
    assert "ODD" in clean.columns  # a numeric column not named: a feature by default


# --------------------------------------------------------------------------- history


def _hand_table() -> tuple[pd.DataFrame, object]:
    spec = parse_spec(
        {
            "name": "hand",
            "id": "id",
            "time": "t",
            "amount": "amount",
            "label": "label",
            "label_delay": 2,
            "entities": ["who"],
            "windows": [1, 7],
        }
    )
    table = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "t": pd.to_datetime(
                [
                    "2026-01-01 10:00",
                    "2026-01-01 10:00",
                    "2026-01-01 22:00",
                    "2026-01-05 10:00",
                    "2026-01-09 10:00",
                ]
            ),
            "amount": [10.0, 20.0, 30.0, 100.0, 5.0],
            "label": [1.0, 0.0, np.nan, 1.0, 0.0],
            "who": ["x", "x", "x", "x", "x"],
        }
    )
    return table, spec


def test_history_exact_numbers_on_a_hand_built_table() -> None:
    table, spec = _hand_table()
    h = entity_history(table, spec)
    # Rows at the same moment are not each other's history.
    assert h["who_rows_before_1d"].tolist() == [0, 0, 2, 0, 0]
    assert h["who_rows_before_7d"].tolist() == [0, 0, 2, 3, 1]
    assert h["who_amount_sum_before_7d"].tolist() == [0, 0, 30, 60, 100]
    assert h["who_amount_mean_before_7d"].tolist() == [0, 0, 15, 20, 100]
    assert h["who_amount_over_mean_7d"].tolist() == [1, 1, 2, 5, 0.05]
    assert h["who_hours_since_previous"].tolist() == [168, 168, 12, 84, 96]
    # Labels at least 2 days old: d (Jan 5) knows a and b (Jan 1); e (Jan 9) knows d only
    # within 7 + 2 days back of Jan 9 (Dec 31 .. Jan 7): a, b, d.
    assert h["who_confirmed_before_7d"].tolist() == [0, 0, 0, 1, 2]
    assert h["who_confirmed_share_before_7d"].tolist() == [0, 0, 0, 0.5, 2 / 3]
    assert h["period"].tolist() == ["2026-01-01"] * 3 + ["2026-01-05", "2026-01-09"]


def test_history_on_the_hand_built_table_equals_the_numpy_oracle() -> None:
    table, spec = _hand_table()
    pd.testing.assert_frame_equal(entity_history(table, spec), numpy_entity_history(table, spec))


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"label_delay": 0},
        {"period": "week", "windows": [1, 2], "label_delay": 1},
        {"amount": None},
        {"label": None},
    ],
)
def test_history_equals_the_numpy_oracle_on_a_card_table(change: dict) -> None:
    """DuckDB's windows give exactly the numbers of one sort per entity and binary search."""
    spec = parse_spec({**CARD, **change})
    raw = simulate_table("card-payments", 6000, seed=3)
    raw.loc[::2, "TX_DATETIME"] = raw.loc[::2, "TX_DATETIME"].dt.floor("h")  # many ties
    clean = check_table(raw, spec, ValidationConfig()).tables["cards"]
    got = entity_history(clean, spec)
    assert list(got.columns) == ["period", *history_feature_names(spec)]
    pd.testing.assert_frame_equal(got, numpy_entity_history(clean, spec))


def test_history_does_not_depend_on_the_row_order() -> None:
    spec = parse_spec(CARD)
    clean = check_table(
        simulate_table("card-payments", 3000, seed=4), spec, ValidationConfig()
    ).tables["cards"]
    shuffled = clean.sample(frac=1.0, random_state=1)
    again = entity_history(shuffled, spec).loc[clean.index]
    pd.testing.assert_frame_equal(again, entity_history(clean, spec))


def test_truncating_the_table_leaves_earlier_features_unchanged() -> None:
    spec = parse_spec(CARD)
    clean = check_table(
        simulate_table("card-payments", 4000, seed=11), spec, ValidationConfig()
    ).tables["cards"]
    full = entity_history(clean, spec)
    times = clean["TX_DATETIME"]
    for cut in times.quantile([0.2, 0.5, 0.8, 0.97]).tolist():
        kept = (times <= cut).to_numpy()
        part = entity_history(clean.loc[kept].reset_index(drop=True), spec)
        pd.testing.assert_frame_equal(part, full.loc[kept].reset_index(drop=True))


def test_own_later_and_young_labels_never_reach_a_row() -> None:
    spec = parse_spec(CARD)
    clean = check_table(
        simulate_table("card-payments", 4000, seed=5), spec, ValidationConfig()
    ).tables["cards"]
    full = entity_history(clean, spec)
    cut = clean["TX_DATETIME"].quantile(0.6)
    young = (clean["TX_DATETIME"] > cut - pd.Timedelta(days=7)).to_numpy()
    flipped = clean.copy()
    flipped.loc[young, "TX_FRAUD"] = 1.0 - flipped.loc[young, "TX_FRAUD"]
    again = entity_history(flipped, spec)
    # Rows up to the cut see only labels at least 7 days old: none of the flipped ones.
    upto = (clean["TX_DATETIME"] <= cut).to_numpy()
    pd.testing.assert_frame_equal(again.loc[upto], full.loc[upto])
    label_columns = [c for c in history_feature_names(spec) if "confirmed" in c]
    assert not again.loc[~upto, label_columns].equals(full.loc[~upto, label_columns])


# --------------------------------------------------------------------------- training


def test_time_split_beats_chance_and_reports_every_ranking() -> None:
    spec = parse_spec({**CARD, "capacity": {"capacity_share": 0.02, "capacity_count": None}})
    clean = check_table(
        simulate_table("card-payments", 20000, seed=7), spec, ValidationConfig()
    ).tables["cards"]
    result = train_table(clean, entity_history(clean, spec), spec, TrainingConfig())
    m = result.evaluation.metrics
    assert result.evaluation.basis.startswith("time split")
    for ranking in ("combined", "lightgbm", "isolation_forest", "baseline_amount"):
        assert f"{ranking}_precision_at_k" in m
    assert m["combined_roc_auc"] > 0.7
    assert m["combined_average_precision"] > m["baseline_amount_average_precision"]
    assert result.fairness is not None
    assert set(result.fairness.by_group["group"]) == {"18-29", "30-49", "50-64", "65+"}
    assert "CUSTOMER_AGE_BAND" not in result.model.feature_columns


def train_plain_table(X: np.ndarray, y: np.ndarray) -> TableTrainingResult:
    """Train a table with no time column: columns a, b, c, d, an id and the label y."""
    table = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(
        row=[f"r{i}" for i in range(len(y))], y=y
    )
    spec = parse_spec({"name": "plain", "id": "row", "label": "y"})
    clean = check_table(table, spec, ValidationConfig()).tables["plain"]
    return train_table(clean, entity_history(clean, spec), spec, TrainingConfig())


def test_without_time_cross_validation_finds_planted_outliers() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 4))
    y = np.zeros(1500)
    y[:45] = 1
    X[:45] += 4
    result = train_plain_table(X, y)
    m = result.evaluation.metrics
    assert result.evaluation.basis.startswith("stratified 5-fold")
    assert m["isolation_forest_roc_auc"] > 0.95
    assert m["lightgbm_roc_auc"] > 0.95
    assert result.model.feature_columns == ("a", "b", "c", "d")


# --------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_end_to_end_on_a_small_simulated_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The table, both trainings and the first promote run in this process (`tillit_here`,
    # in tmp_path like the commands started as new processes with cwd=tmp_path).
    monkeypatch.chdir(tmp_path)
    spec = SPECS / "card-payments.yaml"
    ok(
        tillit_here(
            "simulate-table", "--kind", "card-payments", "--rows", "3000", "--out", "t.parquet"
        )
    )  # fmt: skip
    trained = ok(tillit_here("train", "--table", "t.parquet", "--spec", spec))
    assert "registered card-payments version 1 as 'challenger'" in trained.stdout
    assert "baseline_amount" in trained.stdout
    ok(tillit_here("promote", "--spec", spec))
    # A second version of the same table: judged within the configured tolerance, and on
    # the decisions each learned from (logged under the one name promotion reads).
    ok(tillit_here("train", "--table", "t.parquet", "--spec", spec))
    second = tillit("promote", "--spec", spec, cwd=tmp_path)
    said = second.stdout + second.stderr
    assert "within the tolerance 0.01 (+0.0000) but not trained on more decisions" in said
    assert re.search(r"\((\d+) decisions against the champion's \1\)", said), said
    scored = ok(
        tillit(
            "score",
            "--table",
            "t.parquet",
            "--spec",
            spec,
            "--period",
            "2026-01-20..2026-01-30",
            "--out",
            "out",
            cwd=tmp_path,
        )
    )
    assert "flagged for review" in scored.stdout
    out = tmp_path / "out"
    risk = pd.read_parquet(out / "risk_list.parquet")
    assert risk["TRANSACTION_ID"].is_unique
    assert set(risk["period"]) <= {f"2026-01-{d}" for d in range(20, 31)}
    per_day = risk.groupby("period")
    # Bounded: 1 % of each day's rows (at least 1) plus 10 % of that at random.
    for _, day in per_day:
        k = max(1, int(np.ceil(0.01 * len(day))))
        assert day["flagged"].sum() == k + max(1, round(0.1 * k))
        assert (day.loc[day["why_flagged"] == "capacity", "rank"] <= k).all()
    flagged = risk[risk["flagged"]]
    assert (flagged["reasons"] != "").all()
    explanations = pd.read_parquet(out / "explanations.parquet")
    sums = explanations.groupby(["TRANSACTION_ID", "scorer"]).agg(
        total=("contribution", "sum"), base=("base_value", "first"), output=("output", "first")
    )
    assert np.allclose(sums["total"] + sums["base"], sums["output"], atol=1e-6)
    assert set(sums.index.get_level_values(0)) == set(flagged["TRANSACTION_ID"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["scored"] == len(risk)
    assert manifest["model"]["alias"] == "champion"
    for name in ("report.html", "model_card.md", "risk_list.csv"):
        assert name in manifest["outputs"]
    card = (out / "model_card.md").read_text()
    assert "Fairness" in card or "fairness" in card
    # The blend weight the run chose, and where it was chosen, travel with the model.
    assert re.search(
        r"weight of the supervised scorer in the blend[^\n]*chosen on|configured weight", card
    )
    # The same table, spec and model give a byte-identical risk list (here in this process).
    ok(
        tillit_here(
            "score", "--table", "t.parquet", "--spec", spec,
            "--period", "2026-01-20..2026-01-30", "--out", "out2",
        )
    )  # fmt: skip
    for name in ("risk_list.parquet", "explanations.parquet"):
        assert (out / name).read_bytes() == (tmp_path / "out2" / name).read_bytes()
    log = ok(tillit_here("log"))
    assert "hash chain intact" in log.stdout
    again = tillit(
        "score",
        "--table",
        "t.parquet",
        "--spec",
        spec,
        "--period",
        "2026-01-20",
        "--out",
        "out",
        cwd=tmp_path,
    )
    refused(again, "already holds an earlier run")


@pytest.mark.slow  # runs the real command in a new process
def test_cli_refuses_bad_specs_and_tables_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the table is written in this process; the refusals are not
    ok(tillit_here("simulate-table", "--kind", "card-payments", "--rows", "500", "--out", "t.csv"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (SPECS / "card-payments.yaml").read_text().replace("period: day", "period: hour")
    )
    refused(tillit("train", "--table", "t.csv", "--spec", bad, cwd=tmp_path), "key 'period'")
    missing = tmp_path / "missing.yaml"
    missing.write_text(
        (SPECS / "card-payments.yaml")
        .read_text()
        .replace("[CUSTOMER_ID, TERMINAL_ID]", "[SHOP_ID]")
    )
    refused(tillit("train", "--table", "t.csv", "--spec", missing, cwd=tmp_path), "SHOP_ID")
    refused(tillit("train", "--table", "t.csv", cwd=tmp_path), "--table FILE and --spec SPEC")
    refused(
        tillit(
            "score",
            "--table",
            "t.csv",
            "--spec",
            SPECS / "card-payments.yaml",
            "--period",
            "2026-13",
            "--out",
            "o",
            cwd=tmp_path,
        ),
        "expected one day like 2026-03-01",
    )


def test_second_example_spec_learns_from_mostly_unreviewed_trips() -> None:
    spec = load_spec(SPECS / "transport-trips.yaml")
    clean = check_table(
        simulate_table("transport-trips", 6000, seed=7), spec, ValidationConfig()
    ).tables[spec.name]
    result = train_table(clean, entity_history(clean, spec), spec, TrainingConfig())
    assert result.label_counts["not_reviewed"] > result.label_counts["cleared"]
    assert result.evaluation.period.startswith("2026-W")
    m = result.evaluation.metrics
    assert m["combined_average_precision"] > m["baseline_amount_average_precision"]
    assert "TRAVELLER_AGE_BAND" not in result.model.feature_columns


@pytest.mark.slow  # runs the real command in a new process
def test_feedback_appends_checked_decisions_that_become_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tillit.config import TillitConfig
    from tillit.jobs.table_train import load_table

    monkeypatch.chdir(tmp_path)  # the table is written in this process; feedback is not
    spec = SPECS / "card-payments.yaml"
    ok(
        tillit_here(
            "simulate-table", "--kind", "card-payments", "--rows", "500", "--out", "t.parquet"
        )
    )
    table = pd.read_parquet(tmp_path / "t.parquet")
    cleared = str(table.loc[table["TX_FRAUD"] == 0, "TRANSACTION_ID"].iloc[0])
    pd.DataFrame(
        {
            "TRANSACTION_ID": [cleared, "999999", "3"],
            "decision": ["confirmed", "confirmed", "maybe"],
            "reviewer": ["r1", "r1", "r2"],
            "decided_on": ["2026-02-10", "2026-02-10", "2026-02-11"],
        }
    ).to_csv(tmp_path / "d.csv", index=False)
    done = ok(
        tillit(
            "feedback", "--table", "t.parquet", "--spec", spec, "--decisions", "d.csv", cwd=tmp_path
        )
    )
    assert "3 decisions read: 1 accepted" in done.stdout and "2 rejected" in done.stdout
    assert "unknown TRANSACTION_ID" in done.stdout
    assert "decision must be confirmed, cleared or not_reviewed" in done.stdout
    log = pd.read_parquet(tmp_path / "t.decisions.parquet")
    assert log["row_id"].tolist() == [cleared] and log["label"].tolist() == [1.0]
    loaded = load_table(tmp_path / "t.parquet", spec, TillitConfig(), tmp_path / "q")
    relabelled = loaded.table.set_index("TRANSACTION_ID")["TX_FRAUD"]
    assert relabelled[cleared] == 1.0
    assert "feedback" in ok(tillit_here("log")).stdout


@pytest.mark.slow
def test_rows_quarantined_at_the_door_are_on_the_risk_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row received is accounted for: scored, or held with the rule it broke."""
    monkeypatch.chdir(tmp_path)  # simulate, train and promote run in this process
    spec = SPECS / "card-payments.yaml"
    ok(
        tillit_here(
            "simulate-table", "--kind", "card-payments", "--rows", "3000", "--out", "t.parquet"
        )
    )  # fmt: skip
    table = pd.read_parquet(tmp_path / "t.parquet").astype({"TRANSACTION_ID": "object"})
    day = table["TX_DATETIME"].dt.strftime("%Y-%m-%d")
    in_period = np.flatnonzero((day >= "2026-01-20") & (day <= "2026-01-30"))
    negative, no_id, no_time = in_period[[3, 40, 77]]
    before = int(np.flatnonzero(day < "2026-01-10")[5])
    table["TX_DATETIME"] = table["TX_DATETIME"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    table.loc[negative, "TX_AMOUNT"] = -12.5
    table.loc[no_id, "TRANSACTION_ID"] = None
    table.loc[no_time, "TX_DATETIME"] = "yesterday"
    table.loc[before, "TX_AMOUNT"] = -1.0  # held too, but in a period not scored
    table.to_csv(tmp_path / "t.csv", index=False)
    ids = table["TRANSACTION_ID"]
    ok(tillit_here("train", "--table", "t.csv", "--spec", spec))
    ok(tillit_here("promote", "--spec", spec))
    scored = ok(
        tillit(
            "score", "--table", "t.csv", "--spec", spec,
            "--period", "2026-01-20..2026-01-30", "--out", "out", cwd=tmp_path,
        )
    )  # fmt: skip
    risk = pd.read_parquet(tmp_path / "out" / "risk_list.parquet")
    held = risk[risk["status"] == "quarantined"].set_index("TRANSACTION_ID")
    assert sorted(held.index) == sorted([str(ids[negative]), "", str(ids[no_time])])
    assert str(ids[before]) not in set(risk["TRANSACTION_ID"])
    assert held.loc[str(ids[negative]), "reasons"] == "cannot be scored: TX_AMOUNT >= 0"
    assert held.loc[str(ids[negative]), "period"] == day[negative]
    assert held.loc[str(ids[negative]), "TX_AMOUNT"] == -12.5
    assert held.loc["", "reasons"] == "cannot be scored: TRANSACTION_ID must not be empty"
    assert held.loc[str(ids[no_time]), "reasons"] == (
        "cannot be scored: type: timestamp YYYY-MM-DDTHH:MM:SS (its time cannot be read: "
        "listed in every run until it is corrected)"
    )
    assert held["flagged"].all() and (held["why_flagged"] == "quarantined").all()
    assert held["risk_score"].isna().all() and held["rank"].isna().all()
    ranked = risk[risk["status"] == "scored"]
    assert ranked["rank"].notna().all() and ranked["TRANSACTION_ID"].is_unique
    assert len(ranked) == int(((day >= "2026-01-20") & (day <= "2026-01-30")).sum()) - 3
    counts = json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]
    assert counts["quarantined"] == 3 and counts["scored"] == len(ranked)
    assert counts["received"] == counts["scored"] + counts["quarantined"] == len(risk)
    assert counts["flagged"] == int(risk["flagged"].sum()) == int(ranked["flagged"].sum()) + 3
    assert counts["table_rows_read"] == 3000 and counts["table_rows_quarantined"] == 4
    assert f"{len(risk):,} rows received, 3 quarantined" in scored.stdout
    csv = pd.read_csv(tmp_path / "out" / "risk_list.csv", keep_default_na=False)
    assert (csv["status"] == "quarantined").sum() == 3
    assert "not scored" in (tmp_path / "out" / "report.html").read_text()
    # In Swedish: the report, the reasons and the CSV's headers and words (tillit.i18n);
    # the Parquet keeps the codes, as in home care.
    ok(
        tillit(
            "score", "--table", "t.csv", "--spec", spec, "--period", "2026-01-20..2026-01-30",
            "--out", "out-sv", "--lang", "sv", cwd=tmp_path,
        )
    )  # fmt: skip
    page = (tmp_path / "out-sv" / "report.html").read_text()
    assert '<html lang="sv">' in page
    for swedish in ("Risklista: card-payments", "Flaggade rader", "inte bedömd", "stickprov"):
        assert swedish in page, swedish
    for english in (
        "Flagged rows",
        "not scored",
        "cannot be scored",
        "rows scored",
        "random checks",
    ):
        assert english not in page, english
    sv = pd.read_csv(tmp_path / "out-sv" / "risk_list.csv", sep=";", keep_default_na=False)
    assert {"Status", "Riskpoäng", "Plats", "Flaggad", "Varför flaggad", "Skäl"} <= set(sv.columns)
    assert (sv["Status"] == "i karantän").sum() == 3 and set(sv["Flaggad"]) == {"ja", "nej"}
    assert {"kapacitet", "stickprov", "karantän"} <= set(sv["Varför flaggad"])
    said = " ".join(sv["Skäl"])
    assert "typiskt" in said and "kan inte bedömas: TX_AMOUNT" in said
    assert "tiden går inte att läsa" in said
    for english in ("typical", "cannot be scored", "of the same", "no single feature"):
        assert english not in said, english
    coded = pd.read_parquet(tmp_path / "out-sv" / "risk_list.parquet")
    assert (coded["status"] == "quarantined").sum() == 3


def test_held_rows_without_time_are_listed_in_the_run_with_their_rules() -> None:
    from tillit.tables.held import held_rows, quarantined_rows

    spec = parse_spec({"name": "plain", "id": "row", "amount": "amount"})
    raw = pd.DataFrame({"row": ["a", "b", None, "d"], "amount": ["1", "-2", "3", "x"]})
    result = check_table(raw, spec, ValidationConfig())
    identity = {"model_name": "plain", "model_version": "1", "run_id": "r"}
    held = held_rows(
        quarantined_rows(raw, result.quarantine), result.quarantine, spec, "all", "all", identity
    )
    assert held["row"].tolist() == ["b", "", "d"]
    assert held["reasons"].tolist() == [
        "cannot be scored: amount >= 0",
        "cannot be scored: row must not be empty",
        "cannot be scored: type: float",
    ]
    assert held["amount"].tolist()[:2] == [-2.0, 3.0] and np.isnan(held["amount"].iloc[2])
    assert (held["period"] == "all").all() and held["flagged"].all()
    assert held["rank"].isna().all() and held["risk_score"].isna().all()


def test_home_care_and_table_mode_build_their_scorers_from_one_config_section() -> None:
    from tillit.modelling.scorers import isolation_forest_scorer, lightgbm_scorer
    from tillit.modelling.train import _fit_scorers
    from tillit.tables.model import fit_table_model

    training = TrainingConfig.model_validate(
        {
            "seed": 5,
            "isolation_forest": {"n_estimators": 30, "max_samples": 64, "max_features": 0.5},
            "lightgbm": {"n_estimators": 12, "subsample": 0.7, "num_leaves": 5},
        }
    )
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = np.r_[np.ones(20), np.zeros(180)]
    table_model = fit_table_model(
        X, y, training, spec_name="t", spec_hash="", descriptions={}, trained_periods=["all"]
    )
    features = X.assign(invoice_id=[f"i{i}" for i in range(200)], period="2025-01")
    labels = pd.DataFrame(
        {"invoice_id": features["invoice_id"], "label": y.astype(int), "selection": "random"}
    )
    home_iso, home_gbm, _ = _fit_scorers(features, ("a", "b", "c"), labels, training)
    assert table_model.lightgbm is not None
    expected = lightgbm_scorer(training).get_params()
    assert expected["subsample"] == 0.7 and expected["random_state"] == 5
    assert table_model.lightgbm.get_params() == home_gbm.get_params() == expected
    # The subsample is used, not only stored: LightGBM bags rows every round.
    assert table_model.lightgbm.model_.get_params()["subsample_freq"] == 1
    forest = isolation_forest_scorer(training).get_params()
    assert forest["max_features"] == 0.5 and forest["n_estimators"] == 30
    assert table_model.isolation_forest.get_params() == home_iso.get_params() == forest


def test_a_constrained_name_a_frame_lacks_is_skipped_and_a_typo_refused() -> None:
    from tillit.modelling.train import TrainingError, _fit_scorers
    from tillit.tables.model import fit_table_model

    training = TrainingConfig.model_validate(
        {
            "lightgbm": {
                "n_estimators": 12,
                "monotone_increasing": ["a", "billed_over_registered_hours"],
                "monotone_increasing_on": True,
            }
        }
    )
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = np.r_[np.ones(20), np.zeros(180)]
    table_model = fit_table_model(
        X, y, training, spec_name="t", spec_hash="", descriptions={}, trained_periods=["all"]
    )
    # The home-care column is not in this table: only "a" is constrained.
    assert table_model.lightgbm is not None
    assert table_model.lightgbm.monotone_increasing_applied_ == ("a",)
    features = X.assign(invoice_id=[f"i{i}" for i in range(200)], period="2025-01")
    labels = pd.DataFrame(
        {"invoice_id": features["invoice_id"], "label": y.astype(int), "selection": "random"}
    )
    # Home care on a frame without the catalog's column skips it too ...
    _, gbm, _ = _fit_scorers(features, ("a", "b", "c"), labels, training)
    assert gbm.monotone_increasing_applied_ == ("a",)
    # ... but a name in neither the frame nor the feature catalog is a typo.
    typo = training.model_copy(
        update={
            "lightgbm": training.lightgbm.model_copy(
                update={"monotone_increasing": ("a", "billed_over_registred_hours")}
            )
        }
    )
    with pytest.raises(
        TrainingError, match=r"names no feature column: billed_over_registred_hours \(the"
    ):
        _fit_scorers(features, ("a", "b", "c"), labels, typo)
    # Switched off, the list is not checked (and constrains nothing).
    off = typo.model_copy(
        update={"lightgbm": typo.lightgbm.model_copy(update={"monotone_increasing_on": False})}
    )
    _, gbm, _ = _fit_scorers(features, ("a", "b", "c"), labels, off)
    assert gbm.monotone_increasing_applied_ == ()
