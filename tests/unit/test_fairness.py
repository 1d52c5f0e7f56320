"""Fairness audit: exact rates per group on hand-built frames, and the gaps between them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tillit.features.catalog import PROVIDER_AGE_BANDS, PROVIDER_SIZE_BANDS
from tillit.review.fairness import FAIRNESS_COLUMNS, age_band, fairness_audit, size_band


def _group(name: str, n: int, flagged_irregular: int, flagged_clean: int, missed: int) -> dict:
    """``n`` invoices: flagged and irregular, flagged and clean, irregular but missed, the rest clean."""
    rest = n - flagged_irregular - flagged_clean - missed
    assert rest >= 0
    flagged = [1] * flagged_irregular + [1] * flagged_clean + [0] * missed + [0] * rest
    label = [1] * flagged_irregular + [0] * flagged_clean + [1] * missed + [0] * rest
    return {"group": [name] * n, "flagged": flagged, "label": label}


def _frame() -> pd.DataFrame:
    # A: 10 invoices, 2 flagged (1 irregular), 2 irregular in all -> 0.2, 0.5, 0.5 (small group)
    # B: 40 invoices, 8 flagged (6 irregular), 8 irregular in all -> 0.2, 0.75, 0.75
    # C: 40 invoices, 2 flagged (1 irregular), 4 irregular in all -> 0.05, 0.5, 0.25
    parts = [_group("A", 10, 1, 1, 1), _group("B", 40, 6, 2, 2), _group("C", 40, 1, 1, 3)]
    frame = pd.DataFrame(
        {k: [v for p in parts for v in p[k]] for k in ("group", "flagged", "label")}
    )
    frame["provider_size_band"] = frame["group"].astype("str")
    # Districts: Norr gets every flag; Syd none, so its precision is undefined.
    frame["client_district"] = np.where(np.arange(len(frame)) % 2 == 0, "Norr", "Syd")
    frame.loc[frame["flagged"] == 1, "client_district"] = "Norr"
    frame["client_district"] = frame["client_district"].astype("str")
    return frame


def _row(audit, grouping: str, group: str) -> pd.Series:
    table = audit.by_group
    return table[(table["grouping"] == grouping) & (table["group"] == group)].iloc[0]


def _gap(audit, grouping: str, metric: str) -> pd.Series:
    table = audit.disparity
    return table[(table["grouping"] == grouping) & (table["metric"] == metric)].iloc[0]


def test_rates_by_group_are_exact() -> None:
    audit = fairness_audit(_frame(), "label", "flagged", ["provider_size_band"])
    a = _row(audit, "provider_size_band", "A")
    assert (a["n"], a["n_flagged"], a["n_positive"]) == (10, 2, 2)
    assert (a["flag_rate"], a["precision"], a["recall"]) == (0.2, 0.5, 0.5)
    assert bool(a["small_group"]) is True
    b = _row(audit, "provider_size_band", "B")
    assert (b["flag_rate"], b["precision"], b["recall"]) == (0.2, 0.75, 0.75)
    c = _row(audit, "provider_size_band", "C")
    assert (c["flag_rate"], c["precision"], c["recall"]) == (0.05, 0.5, 0.25)
    assert bool(c["small_group"]) is False
    assert audit.by_group["group"].tolist() == ["A", "B", "C"]


def test_largest_ratio_and_difference_leave_out_small_groups() -> None:
    audit = fairness_audit(_frame(), "label", "flagged", ["provider_size_band"])
    flag = _gap(audit, "provider_size_band", "flag_rate")
    assert (flag["min_group"], flag["max_group"]) == ("C", "B")
    assert flag["largest_ratio"] == pytest.approx(4.0)
    assert flag["largest_difference"] == pytest.approx(0.15)
    assert flag["groups_compared"] == 2
    assert flag["excluded_groups"] == "A (n < 30)"
    precision = _gap(audit, "provider_size_band", "precision")
    assert precision["largest_ratio"] == pytest.approx(1.5)
    assert precision["largest_difference"] == pytest.approx(0.25)
    recall = _gap(audit, "provider_size_band", "recall")
    assert (recall["min_group"], recall["max_group"]) == ("C", "B")
    assert recall["largest_ratio"] == pytest.approx(3.0)
    assert recall["largest_difference"] == pytest.approx(0.5)


def test_lower_min_group_size_brings_small_group_back() -> None:
    audit = fairness_audit(_frame(), "label", "flagged", ["provider_size_band"], min_group_size=5)
    assert not audit.by_group["small_group"].any()
    recall = _gap(audit, "provider_size_band", "recall")
    assert recall["groups_compared"] == 3 and recall["excluded_groups"] == ""
    assert recall["largest_ratio"] == pytest.approx(3.0)
    flag = _gap(audit, "provider_size_band", "flag_rate")
    assert flag["max_group"] == "A"  # A and B tie at 0.2: the first by name is shown


def test_group_without_flags_gives_undefined_precision_and_infinite_flag_ratio() -> None:
    audit = fairness_audit(_frame(), "label", "flagged", ["client_district"])
    syd = _row(audit, "client_district", "Syd")
    assert syd["n_flagged"] == 0 and syd["flag_rate"] == 0.0
    assert math.isnan(syd["precision"]) and syd["recall"] == 0.0
    flag = _gap(audit, "client_district", "flag_rate")
    assert flag["min_group"] == "Syd" and math.isinf(flag["largest_ratio"])
    precision = _gap(audit, "client_district", "precision")
    assert precision["groups_compared"] == 1
    assert math.isnan(precision["largest_ratio"])
    assert precision["excluded_groups"] == "Syd (no flagged)"
    assert "| client's district | precision | n/a | n/a | n/a | n/a | Syd (no flagged) |" in (
        audit.to_markdown()
    )
    metrics = audit.summary_metrics()
    assert math.isinf(metrics["fairness_flag_rate_ratio_client_district"])
    assert "fairness_precision_ratio_client_district" not in metrics


def test_unreviewed_invoices_count_for_flag_rate_only() -> None:
    frame = pd.DataFrame(
        {
            "g": ["A"] * 40,
            "flagged": [1] * 4 + [0] * 36,
            # Audit outcomes: 2 flagged reviewed (1 confirmed), 2 flagged unreviewed,
            # 1 unflagged reviewed and confirmed, the rest never reviewed.
            "label": [1.0, 0.0, np.nan, np.nan, 1.0] + [np.nan] * 35,
        }
    )
    frame["label"] = frame["label"].astype("Float64")
    row = fairness_audit(frame, "label", "flagged", ["g"]).by_group.iloc[0]
    assert (row["n"], row["n_labelled"], row["n_positive"]) == (40, 3, 2)
    assert row["flag_rate"] == 0.1
    assert row["precision"] == 0.5
    assert row["recall"] == 0.5


def test_missing_group_values_are_a_group_of_their_own() -> None:
    frame = pd.DataFrame(
        {
            "client_district": pd.Series(["Norr", None, "Norr"], dtype="str"),
            "flagged": [True, False, False],
            "label": [1, 0, 0],
        }
    )
    audit = fairness_audit(frame, "label", "flagged", ["client_district"])
    assert audit.by_group["group"].tolist() == ["(missing)", "Norr"]


def test_summary_metrics_names_and_values() -> None:
    audit = fairness_audit(_frame(), "label", "flagged", ["provider_size_band"])
    metrics = audit.summary_metrics()
    assert metrics["fairness_flag_rate_ratio_provider_size_band"] == pytest.approx(4.0)
    assert metrics["fairness_recall_difference_provider_size_band"] == pytest.approx(0.5)
    assert len(metrics) == 6


def test_markdown_and_html_show_the_numbers_and_the_caveat() -> None:
    frame = _frame()
    frame.loc[0, "provider_size_band"] = "A<script>"
    audit = fairness_audit(frame, "label", "flagged", ["provider_size_band"])
    markdown = audit.to_markdown()
    assert "| provider size (clients billed in the month) | B | 40 | 8 | 8 | 20.0 % | 75.0 % |" in (
        markdown
    )
    assert "4.00" in markdown and "15.0 points" in markdown
    assert "small group (n < 30)" in markdown and "left out of the ratios" in markdown
    page = audit.to_html()
    assert "<td>20.0 %</td>" in page and "<td>4.00</td>" in page
    assert "<script>" not in page and "A&lt;script&gt;" in page
    assert "<script>" not in markdown


def test_bad_inputs_are_refused() -> None:
    frame = _frame()
    with pytest.raises(ValueError, match="missing"):
        fairness_audit(frame, "label", "flagged", ["provider_age_band"])
    bad = frame.assign(label=frame["label"] * 2)
    with pytest.raises(ValueError, match="1 \\(irregular\\)"):
        fairness_audit(bad, "label", "flagged", ["provider_size_band"])
    unflagged = frame.assign(flagged=frame["flagged"].astype("Float64"))
    unflagged.loc[0, "flagged"] = pd.NA
    with pytest.raises(ValueError, match="must not be null"):
        fairness_audit(unflagged, "label", "flagged", ["provider_size_band"])


def test_default_groupings_are_the_feature_tables_audit_columns() -> None:
    frame = _frame()
    frame["provider_age_band"] = "x"
    frame["provider_legal_form"] = "AB"
    audit = fairness_audit(frame, "label", "flagged")
    assert tuple(audit.by_group["grouping"].unique()) == FAIRNESS_COLUMNS


@pytest.mark.parametrize(
    ("bands", "helper"), [(PROVIDER_SIZE_BANDS, size_band), (PROVIDER_AGE_BANDS, age_band)]
)
def test_band_helpers_use_the_feature_stage_cut_points(bands, helper) -> None:
    for (lower, label), (next_lower, _) in zip(bands, [*bands[1:], (math.inf, "")], strict=True):
        assert helper(lower) == label
        if math.isfinite(next_lower):
            assert helper(next_lower - 0.5) == label
    with pytest.raises(ValueError):
        helper(-1)
    with pytest.raises(ValueError):
        helper(float("nan"))
