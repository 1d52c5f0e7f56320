"""The faster paths of `tillit score` give exactly what the plain paths gave.

Each test builds a small frame by hand and compares the fast path with the
cell-by-cell or pandas path it replaced: same cells, same dtypes, same bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tillit.data.io import _map_text_cells, neutralise_cell, spreadsheet_safe
from tillit.data.validate import _is_known
from tillit.review.report import _ContributionsByInvoice


def _text(values: list[str | None]) -> pd.Series:
    return pd.Series(values, dtype="str")


def test_spreadsheet_safe_neutralises_the_same_cells_as_cell_by_cell() -> None:
    frame = pd.DataFrame(
        {
            "id": _text(["=HYPERLINK(1)", "ok", None, "-12", "\tx", "'=q", "@a", "+4", "\rz"]),
            "n": [1, -2, 3, 4, 5, 6, 7, 8, 9],
            "=head": _text(["a", "", "b", None, "=c", "d", "e", "f", "g"]),
            "mixed": pd.Series(["=x", 1, None, "y", 2.5, "+", "-", "@", "z"], dtype=object),
        }
    )
    cell_by_cell = _map_text_cells(frame, neutralise_cell)
    fast = spreadsheet_safe(frame)
    assert list(fast.columns) == ["id", "n", "'=head", "mixed"]
    assert fast["id"].tolist()[:4] == ["'=HYPERLINK(1)", "ok", fast["id"].iloc[2], "'-12"]
    assert fast.equals(cell_by_cell)
    assert list(fast.dtypes) == list(cell_by_cell.dtypes)
    assert fast.to_csv(index=False) == cell_by_cell.to_csv(index=False)


def test_spreadsheet_safe_of_an_empty_frame_keeps_its_columns() -> None:
    frame = pd.DataFrame({"a": _text([]), "=b": pd.Series([], dtype="float64")})
    assert spreadsheet_safe(frame).equals(_map_text_cells(frame, neutralise_cell))


def test_is_known_matches_isin_for_arrow_text_and_other_dtypes() -> None:
    values = _text(["p1", "p2", None, "p9", "", "P1"])
    known = _text(["p1", "p9", "x"])
    expected = values.isin(known).to_numpy()
    assert (
        _is_known(values, known).tolist()
        == expected.tolist()
        == [
            True,
            False,
            False,
            True,
            False,
            False,
        ]
    )
    assert not _is_known(values, _text([])).any()
    as_objects = values.astype(object)
    assert _is_known(as_objects, known).tolist() == expected.tolist()


def test_contributions_by_invoice_cut_out_as_the_group_by_did() -> None:
    explanations = pd.DataFrame(
        {
            "invoice_id": ["i2", "i1", "i2", "i1", "i2"],
            "scorer": ["lightgbm", "lightgbm", "isolation_forest", "lightgbm", "lightgbm"],
            "feature": ["a", "b", "c", "d", "e"],
            "contribution": [0.5, -0.25, 1.0, 2.0, -3.0],
        }
    )
    lazy = _ContributionsByInvoice(explanations)
    eager = {
        (str(i), str(s)): part.set_index("feature")
        for (i, s), part in explanations.groupby(["invoice_id", "scorer"], sort=False)
    }
    assert set(lazy) == set(eager) and len(lazy) == 3
    for key, part in eager.items():
        assert lazy[key].equals(part)
    assert lazy.get(("i1", "isolation_forest")) is None


def test_contributions_of_consecutive_rows_are_cut_out_as_a_slice_with_the_same_frame() -> None:
    """Explanations come invoice by invoice: each part is a slice, the same frame as before."""
    from tillit.review.report import _as_slice

    explanations = pd.DataFrame(
        {
            "invoice_id": _text(["i1", "i1", "i1", "i2", "i2", "i3", "i1"]),
            "scorer": _text(["lightgbm"] * 2 + ["isolation_forest"] + ["lightgbm"] * 4),
            "feature": _text(["a", "b", "a", "a", "b", "a", "c"]),
            "contribution": [0.5, -0.25, 1.0, 2.0, -3.0, 0.0, 7.0],
        }
    )
    lazy = _ContributionsByInvoice(explanations)
    groups = explanations.groupby(["invoice_id", "scorer"], sort=False).indices
    assert _as_slice(groups[("i2", "lightgbm")]) == slice(3, 5)
    assert isinstance(_as_slice(groups[("i1", "lightgbm")]), np.ndarray)  # rows 0, 1 and 6
    for (i, s), rows in groups.items():
        expected = explanations.iloc[rows].set_index("feature")
        assert lazy[(str(i), str(s))].equals(expected)
        assert list(lazy[(str(i), str(s))].dtypes) == list(expected.dtypes)
        assert lazy[(str(i), str(s))].index.equals(expected.index)


@pytest.mark.slow
def test_score_without_a_model_says_so_before_the_export_is_judged(tmp_path) -> None:
    """The model loads while the export is read and checked; its absence is still said first."""
    from tests.conftest import tiny_tables
    from tillit.config import TillitConfig
    from tillit.data.io import write_tables
    from tillit.errors import ModelUnavailableError
    from tillit.jobs.score import run_score

    tables = tiny_tables()
    tables["visits"] = tables["visits"].assign(method="carrier pigeon")  # every visit quarantined
    write_tables(tables, tmp_path / "data")
    (tmp_path / "unreadable").mkdir()  # no tables at all: a contract error
    for data in (tmp_path / "data", tmp_path / "unreadable"):
        out = tmp_path / f"out-{data.name}"
        with pytest.raises(ModelUnavailableError):
            run_score(data, "2025-01", out, TillitConfig(), "champion", "en", tmp_path / "store")
        assert not out.exists()


def _visits(ids: list[str | None], method: str = "nfc") -> pd.DataFrame:
    from tests.conftest import tiny_tables

    visits = tiny_tables()["visits"]
    rows = [visits.iloc[i % 3] for i in range(len(ids))]
    return pd.DataFrame(rows).reset_index(drop=True).assign(visit_id=ids, method=method)


@pytest.mark.parametrize(
    "ids",
    [
        ["V1", "V2", "V3", "V4"],  # sorted and distinct: the uniqueness check is settled
        ["V1", "V2", "V2", "V3"],  # sorted with a duplicate: Pandera checks it
        ["V3", "V1", "V2", "V1"],  # unsorted with a duplicate
        ["V3", "V1", "V2", "V4"],  # unsorted and distinct
        ["V1", None, "V2", "V3"],  # an empty id
        ["V1", "V1"],
    ],
)
def test_validation_quarantines_what_the_full_pandera_schema_does(ids, monkeypatch) -> None:
    from tests.conftest import tiny_tables
    from tillit.data import validate

    tables = tiny_tables()
    tables["visits"] = _visits(ids)
    tables["visits"].loc[1, "method"] = "carrier pigeon"
    fast = validate.validate_tables(tables)
    monkeypatch.setattr(
        validate, "_schema_without_settled_checks", lambda spec, checked: spec.model.to_schema()
    )
    full = validate.validate_tables(tables)
    assert fast.quarantine.equals(full.quarantine)
    assert fast.summary == full.summary
    assert all(fast.tables[name].equals(full.tables[name]) for name in full.tables)
    duplicated = len(set(i for i in ids if i)) < len([i for i in ids if i])
    unique_rule = fast.quarantine["rule"].str.contains("unique")
    assert unique_rule.any() == duplicated


def test_only_a_sorted_distinct_present_text_column_skips_the_uniqueness_check() -> None:
    from tillit.data.contract import TABLES
    from tillit.data.validate import _schema_without_settled_checks

    spec = TABLES["visits"]

    def unique_after(ids: list[str | None]) -> bool:
        frame = pd.DataFrame({"visit_id": _text(ids)})
        return bool(_schema_without_settled_checks(spec, frame).columns["visit_id"].unique)

    assert not unique_after(["V1", "V2", "V3"])
    assert unique_after(["V1", "V2", "V2"])
    assert unique_after(["V2", "V1", "V3"])
    assert unique_after(["V1", None, "V3"])
    assert unique_after(["V1"])
    assert spec.model.to_schema().columns["visit_id"].unique  # the model itself is unchanged


def test_features_built_while_the_model_loads_keep_the_order_errors_are_said(
    tmp_path, monkeypatch
) -> None:
    """A feature error waits for the checks before it; a month that will stop gets no features."""
    from tests.conftest import tiny_tables
    from tillit.config import TillitConfig
    from tillit.data.io import write_tables
    from tillit.errors import NothingToScoreError
    from tillit.jobs import score as score_job
    from tillit.ops import tracking

    write_tables(tiny_tables(), tmp_path / "data")
    monkeypatch.setattr(tracking, "connect", lambda store: object())
    monkeypatch.setattr(tracking, "resolve_alias", lambda client, name, alias: "ref")
    monkeypatch.setattr(tracking, "load_risk_model", lambda client, ref, store: "model")
    built: list[str] = []

    def broken(engine, spark_master, tables, period, config):
        built.append(period)
        raise RuntimeError("features broke")

    monkeypatch.setattr(score_job, "_features_on", broken)
    config, store = TillitConfig(), tmp_path / "store"
    with pytest.raises(RuntimeError, match="features broke"):
        score_job.run_score(tmp_path / "data", "2025-01", tmp_path / "a", config, "x", "en", store)
    with pytest.raises(NothingToScoreError):
        score_job.run_score(tmp_path / "data", "2030-01", tmp_path / "b", config, "x", "en", store)
    assert built == ["2025-01"]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_not_blank_is_strip_not_empty_for_every_code_point() -> None:
    from tillit.data.validate import _not_blank

    singles = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    cells = singles + [c + " " for c in singles[:12000]] + [" " + c for c in singles[:12000]]
    cells += ["", "  ", " a ", "\u00a0\u3000", "\u200b", "\t\n\r", "x\u2028", None]
    text = _text(cells)
    expected = (text.str.strip() != "").to_numpy(dtype=bool)
    present = text.notna().to_numpy()
    assert _not_blank(text)[present].tolist() == expected[present].tolist()
    plain = pd.Series(cells[-8:], dtype=object)
    assert _not_blank(plain)[:-1].tolist() == [False, False, True, False, True, False, True]


def test_scoring_collects_cycles_less_often_and_restores_the_thresholds() -> None:
    import gc

    from tillit.jobs.score import _rarer_collections

    before = gc.get_threshold()
    with _rarer_collections():
        assert gc.get_threshold() == (10_000, 20, 20)
    assert gc.get_threshold() == before
    with pytest.raises(ValueError), _rarer_collections():
        raise ValueError("a refused run")
    assert gc.get_threshold() == before


def test_overlapping_scores_restore_the_thresholds_of_before_the_first() -> None:
    """Two scores in one process (threads) whose runs overlap: the first ends while the
    second still runs (the thresholds stay raised), the second restores the original ones."""
    import gc

    from tillit.jobs.score import _rarer_collections

    before = gc.get_threshold()
    first, second = _rarer_collections(), _rarer_collections()
    first.__enter__()
    second.__enter__()
    assert gc.get_threshold() == (10_000, 20, 20)
    first.__exit__(None, None, None)
    assert gc.get_threshold() == (10_000, 20, 20), "the second score still runs"
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_the_explainers_are_imported_only_after_the_model_has_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both import SciPy, whose lazy submodules break when two threads import them at once."""
    import importlib
    import threading
    from concurrent.futures import Future

    from tillit.jobs import score as score_job

    imported: list[str] = []
    monkeypatch.setattr(importlib, "import_module", lambda name: imported.append(name))
    loading: Future[object] = Future()
    warming = threading.Thread(target=score_job._import_explainers, args=(loading,))
    warming.start()
    warming.join(timeout=0.3)
    assert warming.is_alive() and imported == []
    loading.set_exception(RuntimeError("no model"))  # a failed load releases it too
    warming.join(timeout=5)
    assert not warming.is_alive()
    # shap is not among them: the forest's TreeSHAP loads only shap's C++ kernel.
    assert imported == ["tillit.modelling.explain", "tillit.review.reasons"]


def test_without_shap_s_kernel_shap_is_imported_with_the_explainers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another shap release: shap itself is imported in the warming thread (joined before the
    explanations), not on the main thread while LightGBM's attribution runs in a pool."""
    import importlib

    from tillit.jobs import score as score_job
    from tillit.modelling import explain

    imported: list[str] = []
    monkeypatch.setattr(importlib, "import_module", lambda name: imported.append(name))
    monkeypatch.setattr(explain, "_shap_kernel", lambda: None)
    score_job._import_explainers()
    assert imported == ["tillit.modelling.explain", "tillit.review.reasons", "shap"]


def test_canonical_order_leaves_rows_already_in_key_order_as_the_sort_would() -> None:
    """A table exported in its key's order is not sorted again (a copy of every row)."""
    from tillit.data.validate import TABLES, canonical_order

    spec = TABLES["clients"]
    columns = list(spec.columns)

    def frame(ids: list[str | None]) -> pd.DataFrame:
        base = {c: pd.Series([f"{c}-{i}" for i in range(len(ids))], dtype="str") for c in columns}
        base[spec.key[0]] = pd.Series(ids, dtype="str")
        return pd.DataFrame(base)

    def sorted_as_before(f: pd.DataFrame) -> pd.DataFrame:
        by = list(spec.key)
        return f.sort_values(by, kind="stable", na_position="last").reset_index(drop=True)

    for ids in (
        ["c1", "c2", "c3"],  # in order: left as it is
        ["c2", "c1", "c3"],  # out of order
        ["c1", "c1", "c2"],  # a duplicate: not strictly increasing, sorted (stably)
        ["c1", None, "c2"],  # an empty key: sorted last
        ["c10", "c9", "ä"],  # text order is by code point in both
    ):
        given = frame(ids).iloc[::-1].reset_index(drop=True) if ids[0] == "c10" else frame(ids)
        pd.testing.assert_frame_equal(canonical_order(given, spec), sorted_as_before(given))


def test_evidence_cells_are_what_a_null_test_per_cell_gave() -> None:
    from tillit.features.build import _cells
    from tillit.features.queries import period_of

    columns = [
        pd.Series([24303, None, 24300], dtype="Int64"),
        pd.Series(["s-1", None, "s-2"], dtype="str"),
        pd.Series(["s-1", None, float("nan")], dtype="object"),
        pd.Series(pd.to_datetime(["2025-04-01", None, "2025-04-30"])),
        pd.Series([1.0, float("nan"), 2.5]),
    ]
    for values in columns:
        for convert in (str, lambda m: period_of(int(m))):
            text_or_time = values.dtype in ("str", object) or values.dtype.kind == "M"
            if text_or_time and convert is not str:
                continue
            before = [None if pd.isna(x) else convert(x) for x in values]
            assert _cells(values, convert) == before


def test_the_collector_is_off_while_models_load_and_on_again_after_the_last() -> None:
    """Overlapping loads (threads): on again only when the last ends, also after a failure;
    a collector the process had turned off stays off."""
    import gc

    from tillit.jobs.score import _no_collections_while_loading

    assert gc.isenabled()
    first, second = _no_collections_while_loading(), _no_collections_while_loading()
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)
    assert not gc.isenabled(), "the second model still loads"
    second.__exit__(None, None, None)
    assert gc.isenabled()
    with pytest.raises(ValueError), _no_collections_while_loading():
        raise ValueError("no model in the store")
    assert gc.isenabled()
    gc.disable()
    try:
        with _no_collections_while_loading():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
