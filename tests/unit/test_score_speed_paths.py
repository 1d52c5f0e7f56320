"""The faster paths of `tillit score` give exactly what the plain paths gave.

Each test builds a small frame by hand and compares the fast path with the
cell-by-cell or pandas path it replaced: same cells, same dtypes, same bytes.
"""

from __future__ import annotations

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
