"""Model card: every section in both formats, numbers formatted, escaping, fairness by construction."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from tillit.features import FEATURE_COLUMNS
from tillit.features.catalog import check_no_protected_features, protected_features
from tillit.review.fairness import fairness_audit
from tillit.review.modelcard import ModelCardData, render_model_card

SECTIONS = (
    "Intended use",
    "Out of scope",
    "Training data",
    "Features",
    "Evaluation",
    "Fairness audit",
    "Known limits",
    "Reproducibility",
)


def _audit():
    frame = pd.DataFrame(
        {
            "provider_size_band": ["1-19 clients"] * 40 + ["20-99 clients"] * 40,
            "flagged": ([1] * 8 + [0] * 32) + ([1] * 2 + [0] * 38),
            "label": ([1] * 6 + [0] * 2 + [1] * 2 + [0] * 30) + ([1, 0] + [1] * 2 + [0] * 36),
        }
    )
    return fairness_audit(frame, "label", "flagged", ["provider_size_band"])


def _card(**changes) -> ModelCardData:
    card = ModelCardData(
        model_name="tillit-lgbm",
        model_version="7",
        run_id="0123456789abcdef",
        created_utc="2025-03-01T08:30:00",
        training_data={
            "periods": ["2024-01", "2024-12"],
            "invoices_per_period": 12345,
            "labels_by_source": {"rule_picked": 410, "random": 120, "feedback": 35},
            "quarantined_invoices": 17,
        },
        features=[
            ("billed_over_registered_hours", "Billed hours divided by registered visit hours."),
            ("provider_age_years", "Years since company registration."),
        ],
        evaluation={"precision_at_k": 0.41234, "recall_at_k": 0.2, "average_precision": 0.3333},
        evaluation_basis="audit_outcomes",
        eval_period="2025-01",
        capacity_k=1200,
        per_scheme_recall={"billing_after_death": 0.95, "padded_hours": 0.125},
        baseline={"precision_at_k": 0.25, "recall_at_k": 0.1},
        fairness=_audit(),
        config_hash="c0ffee" * 4,
        data_fingerprint="fa11" * 5,
        git_commit="1b961c3",
        contract_version="1",
        feature_schema="features-v1",
    )
    return dataclasses.replace(card, **changes) if changes else card


class _TagBalance(HTMLParser):
    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_every_section_is_in_both_outputs() -> None:
    markdown, page = render_model_card(_card())
    for section in SECTIONS:
        assert f"\n## {section}\n" in markdown, section
        assert f"<h2>{section}</h2>" in page, section
    assert markdown.startswith("# Model card: tillit-lgbm (version 7)\n")
    assert markdown.index("## Intended use") < markdown.index("## Reproducibility")


def test_numbers_are_formatted() -> None:
    markdown, page = render_model_card(_card())
    assert "| precision at k | 0.412 | 0.250 |" in markdown
    assert "| average precision | 0.333 | n/a |" in markdown
    assert "| invoices per period | 12,345 |" in markdown
    assert "| labels by source | rule picked: 410, random: 120, feedback: 35 |" in markdown
    assert "| periods | 2024-01, 2024-12 |" in markdown
    assert "| padded_hours | 0.125 |" in markdown
    assert "review capacity k = 1,200 invoices" in markdown
    assert "<td>0.412</td><td>0.250</td>" in page
    # The fairness audit's table: 8 of 40 flagged, 6 of 8 irregular among them.
    assert "20.0 %" in markdown and "75.0 %" in markdown and "<td>20.0 %</td>" in page


def test_evaluation_basis_is_explained() -> None:
    markdown, _ = render_model_card(_card())
    assert (
        "Basis: audit_outcomes." in markdown and "Only reviewed invoices have a label" in markdown
    )
    truth, _ = render_model_card(_card(evaluation_basis="truth"))
    assert "true irregularities of simulated data" in truth


def test_fairness_section_without_audit_and_caveat_with_it() -> None:
    markdown, page = render_model_card(_card())
    assert "Largest gaps between groups" in markdown and "left out of the ratios" in page
    markdown, page = render_model_card(_card(fairness=None))
    assert "No fairness audit was run for this version." in markdown
    assert "<h2>Fairness audit</h2>" in page


def test_reproducibility_lists_hashes_and_commit() -> None:
    markdown, page = render_model_card(_card())
    for value in ("c0ffee" * 4, "fa11" * 5, "1b961c3", "features-v1", "0123456789abcdef"):
        assert value in markdown and value in page
    assert "| data contract version | 1 |" in markdown


def test_html_is_self_contained_escaped_and_balanced() -> None:
    hostile = "<script>alert('x')</script> & <b>bold</b>"
    markdown, page = render_model_card(
        _card(
            model_name="tillit<img src=x>",
            known_limits=[hostile],
            features=[("amount_over_tariff_amount", "a | b <i>c</i>")],
        )
    )
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;" in page
    assert not re.search(r"https?://|src=|<link|@import|url\(", page.replace("src=x&gt;", ""))
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "@media print" in page
    parser = _TagBalance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    # Markdown: no raw tags a renderer would obey, and the pipe does not split the cell.
    assert "<script" not in markdown and "<img" not in markdown and "<i>" not in markdown
    assert "| amount_over_tariff_amount | a \\| b &lt;i>c&lt;/i> |" in markdown


@pytest.mark.parametrize(
    "feature", ["client_district", "birth_year", "client_birth_year", "client_age_years", "age"]
)
def test_protected_attribute_as_feature_fails_loudly(feature: str) -> None:
    features = [("billed_over_registered_hours", "x"), (feature, "y")]
    with pytest.raises(ValueError, match="protected attributes must not be features"):
        render_model_card(_card(features=features))
    card = _card()
    object.__setattr__(card, "features", features)  # even past the constructor
    with pytest.raises(ValueError, match=feature):
        render_model_card(card)


def test_audit_columns_are_refused_and_real_features_pass() -> None:
    with pytest.raises(ValueError, match="provider_size_band"):
        check_no_protected_features(["provider_size_band"])
    assert protected_features(FEATURE_COLUMNS) == []
    assert protected_features(["provider_age_years", "provider_approval_age_years"]) == []


def test_defaults_say_people_decide_and_what_is_out_of_scope() -> None:
    markdown, page = render_model_card(_card())
    assert "The model flags; people decide." in markdown
    assert "- Automatic decisions" in markdown and "<li>Automatic decisions" in page
    assert "- Scoring, profiling or ranking people" in markdown
    assert "Labels from audit outcomes exist only for invoices" in markdown


def test_an_empty_evaluation_says_why_instead_of_an_empty_table() -> None:
    card = _card(
        evaluation={},
        baseline={},
        capacity_k=0,
        row_unit="rows",
        capacity_rule="1.0% of each day's rows",
        no_evaluation_reason="the table has no labels of both kinds",
    )
    markdown, page = render_model_card(card)
    evaluation = markdown.split("## Evaluation")[1].split("## ")[0]
    assert "review capacity 1.0% of each day's rows (nothing was judged, so no k)" in evaluation
    assert "No held-out figures: the table has no labels of both kinds." in evaluation
    assert "| Metric |" not in evaluation and "k = 0" not in markdown
    assert "invoices per period" not in evaluation
    assert "<p>No held-out figures: the table has no labels of both kinds.</p>" in page
    # Without a reason given, the card still says there is none recorded.
    bare, _ = render_model_card(_card(evaluation={}, baseline={}))
    assert "No held-out figures: no held-out evaluation was recorded for this version." in bare


def test_table_capacity_is_the_spec_rule_in_rows_with_what_it_came_to() -> None:
    markdown, _ = render_model_card(
        _card(capacity_k=140, row_unit="rows", capacity_rule="1.0% of each day's rows")
    )
    assert (
        "Period 2025-01, review capacity 1.0% of each day's rows: k = 140 rows flagged over "
        "the period judged. Basis: audit_outcomes."
    ) in markdown
    home, _ = render_model_card(_card())
    assert "review capacity k = 1,200 invoices per period" in home


def test_a_table_model_without_labels_of_both_kinds_has_a_card_that_says_so() -> None:
    import numpy as np

    from tests.unit.test_tables import train_plain_table
    from tillit.config import TillitConfig
    from tillit.jobs.table_train import table_model_card
    from tillit.tables.spec import parse_spec

    rng = np.random.default_rng(0)
    result = train_plain_table(rng.normal(size=(300, 4)), np.zeros(300))
    spec = parse_spec({"name": "plain", "id": "row", "label": "y"})
    card = table_model_card(result, "plain", "1", "run", spec, TillitConfig(), "fp")
    assert isinstance(card, ModelCardData)
    markdown, _ = render_model_card(card)
    evaluation = markdown.split("## Evaluation")[1].split("## ")[0]
    assert "review capacity 1.0% of the table's rows (nothing was judged, so no k)" in evaluation
    assert "No held-out figures: the table has no labels of both kinds." in evaluation
    assert "k = 0" not in markdown and "invoices" not in evaluation
