"""`--out` can never destroy or mix with the input, and every CSV a person opens is inert in a spreadsheet."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests import REPO
from tests.cli import ok, refused, tillit
from tests.conftest import EXPORT_PERIOD, tiny_tables
from tillit.data.io import FORMULA_STARTS, read_frame, read_own_frame, write_frame, write_tables


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "export" / "data"
    write_tables(tiny_tables(), folder)
    return folder


def _score(data: Path, out: Path, cwd: Path, *extra: str):
    return tillit(
        "score", "--data", data, "--period", "2025-01", "--out", out, "--store", cwd / "m",
        *extra, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize("overwrite", [False, True])
def test_score_refuses_out_that_is_the_data_folder(data, tmp_path, overwrite):
    before = _folder_hash(data)
    extra = ("--overwrite",) if overwrite else ()
    refused(_score(data, data, tmp_path, *extra), "is the --data folder", "choose another --out")
    assert _folder_hash(data) == before


def test_score_refuses_out_inside_the_data_folder(data, tmp_path):
    before = _folder_hash(data)
    refused(_score(data, data / "score", tmp_path, "--overwrite"), "lies inside the --data folder")
    assert _folder_hash(data) == before and not (data / "score").exists()


def test_score_refuses_out_that_contains_the_data_folder(data, tmp_path):
    before = _folder_hash(data)
    refused(_score(data, data.parent, tmp_path, "--overwrite"), "contains the --data folder")
    assert _folder_hash(data) == before


def test_score_refuses_out_that_is_an_existing_file(data, tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    refused(_score(data, target, tmp_path, "--overwrite"), "is an existing file")
    assert target.read_text() == "keep me"


def test_validate_refuses_the_same_places(data, tmp_path):
    before = _folder_hash(data)
    refused(tillit("validate", "--data", data, "--out", data, cwd=tmp_path), "is the --data folder")
    refused(
        tillit("validate", "--data", data, "--out", data / "v", cwd=tmp_path),
        "lies inside the --data folder",
    )
    target = tmp_path / "file"
    target.write_text("x")
    refused(tillit("validate", "--data", data, "--out", target, cwd=tmp_path), "existing file")
    assert _folder_hash(data) == before


def test_features_refuses_a_table_written_into_the_data_folder(data, tmp_path):
    before = _folder_hash(data)
    refused(
        tillit(
            "features", "--data", data, "--period", "2025-01", "--out", data / "f.parquet",
            cwd=tmp_path,
        ),
        "lies inside the --data folder",
    )  # fmt: skip
    assert _folder_hash(data) == before


# --------------------------------------------- an earlier run's --out: refused before any work

_EARLIER = {
    "score": ("report.html", lambda d, t: ["--data", d, "--period", "2025-01"]),
    "score --table": (
        "report.html",
        lambda d, t: ["--table", t, "--spec", REPO / "configs/tables/card-payments.yaml",
                      "--period", "2026-01-01"],
    ),
    "providers": ("providers.html", lambda d, t: ["--data", d, "--period", "2025-01"]),
    "link": ("entities.parquet", lambda d, t: ["--data", d]),
}  # fmt: skip


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("command", list(_EARLIER))
def test_an_earlier_out_is_refused_before_anything_is_read(tmp_path, command, overwrite):
    """Inputs that fail when read and an empty store: only a refusal before any reading,
    model loading or linking answers with the --out's message; nothing is written.

    Without --overwrite, --out holds an earlier run's outputs; with it, a file of an output's
    name that no earlier manifest lists (the operator's own).
    """
    data, table = tmp_path / "data", tmp_path / "t.parquet"
    data.mkdir()
    (data / "invoices.parquet").write_bytes(b"not parquet")
    table.write_bytes(b"not parquet")
    out = tmp_path / "out"
    out.mkdir()
    name, inputs = _EARLIER[command]
    (out / name).write_text("the operator's own file")
    if not overwrite:
        (out / "manifest.json").write_text(json.dumps({"outputs": {name: "sha"}}))
    before = _folder_hash(tmp_path)
    args = [command.split()[0], *inputs(data, table), "--out", out, "--store", tmp_path / "m"]
    done = tillit(*args, *(["--overwrite"] if overwrite else []), cwd=tmp_path)
    if overwrite:
        refused(done, f"holds {name}, which no earlier tillit run's manifest.json lists")
    else:
        refused(done, "already holds an earlier run's outputs", "pass --overwrite")
    assert _folder_hash(tmp_path) == before, "something was written"
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------ spreadsheets (CSV injection)

# What a provider controls (its ids) and a spreadsheet would run: a link, a command, a formula.
INJECTIONS = ('=HYPERLINK("http://evil.example/","x")', "=cmd|' /C calc'!A0", "@SUM(1+1)")


def _rename(frame: pd.DataFrame, column: str, mapping: dict[str, str]) -> pd.DataFrame:
    if column in frame.columns:
        frame[column] = frame[column].map(lambda value: mapping.get(value, value))
    return frame


@pytest.fixture(scope="module")
def injected(trained_export, tmp_path_factory) -> dict[str, Path]:
    """The shared trained export, its busiest provider and three flagged invoices given formula ids.

    The three are the highest ranked of the reference run (ids are no feature: still flagged).
    """
    root = tmp_path_factory.mktemp("injected")
    data = root / "data"
    shutil.copytree(trained_export["data"], data)
    invoices = pd.read_parquet(data / "invoices.parquet")
    month = invoices[invoices["period"] == EXPORT_PERIOD]
    providers = {str(month["provider_id"].value_counts().index[0]): INJECTIONS[0]}
    reference = pd.read_parquet(trained_export["reference"] / "risk_list.parquet")
    top = reference[reference["flagged"]].sort_values("rank")["invoice_id"].astype(str)
    ids = dict(zip(top.head(3), INJECTIONS, strict=True))
    for path in data.glob("*.parquet"):
        frame = _rename(_rename(pd.read_parquet(path), "provider_id", providers), "invoice_id", ids)
        frame.to_parquet(path, index=False)
    common = ("--data", data, "--period", EXPORT_PERIOD, "--store", trained_export["store"])
    ok(tillit("score", *common, "--out", root / "score", cwd=root))
    ok(tillit("providers", *common, "--out", root / "providers", cwd=root))
    return {"root": root, "data": data, "score": root / "score", "providers": root / "providers"}


def _neutralised_only(folder: Path, name: str, column: str, wanted: tuple[str, ...]) -> None:
    """The CSV holds each wanted id only with its apostrophe; the Parquet twin the id itself."""
    cells = set(read_frame(folder / f"{name}.csv")[column].astype(str))
    exact = set(pd.read_parquet(folder / f"{name}.parquet")[column].astype(str))
    for value in wanted:
        assert value in exact
        assert "'" + value in cells and value not in cells
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells)


def test_formula_ids_reach_the_risk_list_csv_only_neutralised(injected):
    _neutralised_only(injected["score"], "risk_list", "invoice_id", INJECTIONS)
    _neutralised_only(injected["score"], "risk_list", "provider_id", INJECTIONS[:1])


def test_formula_ids_reach_provider_risk_csv_only_neutralised(injected):
    _neutralised_only(injected["providers"], "provider_risk", "provider_id", INJECTIONS[:1])


def test_a_risk_list_read_back_from_csv_has_the_ids_as_scored(injected):
    """What tillit reads from its own CSV (feedback's --risk-list) is the id, not the cell."""
    from_csv = read_own_frame(injected["score"] / "risk_list.csv")
    exact = pd.read_parquet(injected["score"] / "risk_list.parquet")
    assert list(from_csv["invoice_id"]) == list(exact["invoice_id"])
    assert list(from_csv["provider_id"]) == list(exact["provider_id"])


def test_feedback_with_the_csv_risk_list_matches_formula_ids(injected, trained_export, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(injected["data"], data)
    # The store whose audit log holds the scoring run, copied: feedback appends to it.
    shutil.copytree(trained_export["store"], tmp_path / "m")
    risk = pd.read_parquet(injected["score"] / "risk_list.parquet").set_index("invoice_id")
    assert risk.loc[list(INJECTIONS), "flagged"].all()
    submitted = pd.read_parquet(data / "invoices.parquet")["submitted_on"].max()
    decisions = pd.DataFrame(
        {
            "invoice_id": list(INJECTIONS),
            "decision": "cleared",
            "recovered_sek": None,
            "reviewer": "auditor 1",
            "decided_on": (submitted + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
            "note": "",
        }
    )
    decisions.to_parquet(tmp_path / "decisions.parquet", index=False)
    done = ok(
        tillit(
            "feedback", "--data", data, "--decisions", tmp_path / "decisions.parquet",
            "--risk-list", injected["score"] / "risk_list.csv", "--store", tmp_path / "m",
            cwd=tmp_path,
        )
    )  # fmt: skip
    assert "3 accepted" in done.stdout, done.stdout
    log = pd.read_parquet(data / "decision_log.parquet").set_index("invoice_id")
    assert sorted(log.index) == sorted(INJECTIONS)
    # Matched on the list: an id read as its neutralised cell would be "other".
    assert set(log["selection"]) <= {"flagged", "random_check"}


def test_formula_ids_reach_a_table_mode_list_only_neutralised(tmp_path):
    """Table mode: the spec's id column, injected in the periods scored."""
    spec = REPO / "configs" / "tables" / "card-payments.yaml"
    ok(
        tillit(
            "simulate-table", "--kind", "card-payments", "--rows", "3000",
            "--out", "t.parquet", cwd=tmp_path,
        )
    )  # fmt: skip
    table = pd.read_parquet(tmp_path / "t.parquet").astype({"TRANSACTION_ID": "str"})
    day = table["TX_DATETIME"].dt.strftime("%Y-%m-%d")
    rows = table.index[(day >= "2026-01-20") & (day <= "2026-01-30")][:3]
    table.loc[rows, "TRANSACTION_ID"] = list(INJECTIONS)
    table.to_parquet(tmp_path / "t.parquet", index=False)
    ok(tillit("train", "--table", "t.parquet", "--spec", spec, cwd=tmp_path))
    ok(tillit("promote", "--spec", spec, cwd=tmp_path))
    ok(
        tillit(
            "score", "--table", "t.parquet", "--spec", spec,
            "--period", "2026-01-20..2026-01-30", "--out", "out", cwd=tmp_path,
        )
    )  # fmt: skip
    _neutralised_only(tmp_path / "out", "risk_list", "TRANSACTION_ID", INJECTIONS)


def test_a_csv_written_for_people_reads_back_to_the_exact_values(tmp_path):
    ids = [*INJECTIONS, "'plain", "-5 kr", "I1"]
    frame = pd.DataFrame({"invoice_id": ids, "amount_sek": [1.5, -2.0, 0, 3, 4, 5]})
    path = write_frame(frame, tmp_path / "list.csv")
    cells = list(read_frame(path)["invoice_id"])
    assert cells == [f"'{value}" for value in INJECTIONS] + ["'plain", "'-5 kr", "I1"]
    back = read_own_frame(path)
    assert list(back["invoice_id"]) == ids
    assert list(pd.to_numeric(back["amount_sek"])) == [1.5, -2.0, 0, 3, 4, 5]
