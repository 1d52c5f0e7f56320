"""The auditors' page on a hand-built risk list: what is listed, in what order, escaped, offline."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

from tillit.review.report import contribution_chart, render_report
from tillit.review.score import RISK_LIST_COLUMNS

RUN_INFO = {
    "period": "2025-05",
    "model_name": "tillit-invoice-risk",
    "model_version": "3",
    "run_id": "abcdef1234567890abcdef",
    "config_hash": "cfg123",
    "data_fingerprint": "fp456",
}
DEATH = "The client died before the billed month began: died 2025-04-02 (clients)"
SCRIPT_REASON = "note <script>alert(1)</script> in the visit log"


def risk_list() -> pd.DataFrame:
    """Provider PB has the top invoice, PA the second and a random check; Q-1 cannot be scored."""
    rows = [
        # invoice, provider, client, service, amount, status, risk, rank, flagged, why, findings, reasons
        (
            "I-1",
            "PB",
            "C-11",
            "personal_care",
            12345.5,
            "scored",
            0.97,
            1,
            True,
            "capacity; hard finding",
            DEATH,
            "reason one | reason two",
        ),
        (
            "I-2",
            "PA",
            "C-12",
            "home_service",
            2000.0,
            "scored",
            0.61,
            2,
            True,
            "capacity",
            "",
            f"{SCRIPT_REASON} | hours & minutes",
        ),
        (
            "I-3",
            "PB",
            "C-13",
            "night_care",
            999.0,
            "scored",
            0.50,
            3,
            False,
            "",
            "",
            "unflagged reason",
        ),
        (
            "I-4",
            "PA",
            "C-14",
            "personal_care",
            500.0,
            "scored",
            0.10,
            4,
            True,
            "random check",
            "",
            "no feature stands out from comparable invoices",
        ),
        (
            "Q-1",
            "PC",
            "C-15",
            "personal_care",
            np.nan,
            "quarantined",
            np.nan,
            None,
            True,
            "quarantined",
            "",
            "cannot be scored: amount_sek >= 0",
        ),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "invoice_id",
            "provider_id",
            "client_id",
            "service_type",
            "amount_sek",
            "status",
            "risk_score",
            "rank",
            "flagged",
            "why_flagged",
            "findings",
            "reasons",
        ],
    )
    frame["rank"] = frame["rank"].astype("Int64")
    frame["period"] = "2025-05"
    frame["hours_in_dispute"] = [25.0, 1.0, 0.0, 0.0, np.nan]
    frame["amount_in_dispute_sek"] = [12345.5, 500.0, 0.0, 0.0, np.nan]
    frame["model_name"] = RUN_INFO["model_name"]
    frame["model_version"] = RUN_INFO["model_version"]
    frame["run_id"] = RUN_INFO["run_id"]
    return frame.loc[:, list(RISK_LIST_COLUMNS)]


def explanations() -> pd.DataFrame:
    rows = [
        ("I-1", "lightgbm", "billed_over_registered_hours", 3.5, 0.5),
        ("I-1", "lightgbm", "visit_duration_cv", 0.02, -0.25),
        ("I-1", "lightgbm", "provider_sanctions_365d", 1.0, 0.1),
        ("I-1", "isolation_forest", "manual_registration_share", 0.75, 0.3),
        ("I-1", "tail_probability", "billed_over_registered_hours", 3.5, 1.25),
        ("I-2", "lightgbm", "billed_over_granted_hours", 1.6, 0.2),
    ]
    return pd.DataFrame(
        rows, columns=["invoice_id", "scorer", "feature", "feature_value", "contribution"]
    )


def summary(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "invoices_received": 1234,
        "invoices_scored": 1233,
        "invoices_quarantined": 1,
        "flagged": 4,
        "amount_flagged_sek": 14845.5,
        "amount_in_dispute_flagged_sek": 12845.5,
        "capacity_k": 2,
    }
    values.update(overrides)
    return values


@pytest.fixture
def html() -> str:
    return render_report(risk_list(), explanations(), summary(), RUN_INFO)


def section(html: str, start: str, end: str | None = None) -> str:
    """The part of the page from one heading to the next one named."""
    tail = html[html.index(start) :]
    return tail[: tail.index(end)] if end else tail


def test_every_flagged_invoice_has_a_block_with_its_findings_and_reasons(html):
    for invoice_id in ("I-1", "I-2", "I-4"):
        assert html.count(f'id="inv-{invoice_id}"') == 1, invoice_id
        assert f"href='#inv-{invoice_id}'" in html
    block = section(html, 'id="inv-I-1"', "</div></div>")
    assert '<ul class="finding-list"><li>' + DEATH + "</li></ul>" in html
    assert "<b>Findings</b>" in section(html, 'id="inv-I-1"', 'id="inv-I-2"')
    assert "<b>Reasons</b><ul><li>reason one</li><li>reason two</li></ul>" in html
    assert "Client (pseudonym) C-11" in block
    # An invoice without findings gets no findings heading; an unflagged one no block at all.
    assert "<b>Findings</b>" not in section(html, 'id="inv-I-2"', 'id="inv-I-4"')
    assert 'id="inv-I-3"' not in html and "unflagged reason" not in html


def test_look_first_table_lists_flagged_invoices_by_rank_with_their_tags(html):
    table = section(html, "<h2>Look first</h2>", "<h2>Flagged invoices by provider</h2>")
    assert re.findall(r"#inv-([^']+)'", table) == ["I-1", "I-2", "I-4"]
    assert (
        '<span class="tag capacity">capacity</span><span class="tag finding">hard finding</span>'
        in table
    )
    assert '<span class="tag random">random check</span>' in table
    # The amount and the money in dispute beside it; the finding in one line, the top reason.
    assert "<td class='num'>12,346\u00a0SEK</td><td class='num'>12,346\u00a0SEK</td>" in table
    assert f"<span>{DEATH}</span>" in table
    assert "<span class='sub'>Top reason: Reason one</span>" in table


def test_providers_are_ordered_by_their_best_rank_with_counts_and_totals(html):
    by_provider = section(html, "<h2>Flagged invoices by provider</h2>", "<h2>Quarantined")
    headers = re.findall(r'<h3 class="case" id="provider-([^"]+)">([^<]*)</h3>', by_provider)
    assert headers == [
        (
            "PB",
            "Provider PB · 1 flagged invoice · 12,346\u00a0SEK invoiced · 12,346\u00a0SEK in dispute",
        ),
        (
            "PA",
            "Provider PA · 2 flagged invoices · 2,500\u00a0SEK invoiced · 500\u00a0SEK in dispute",
        ),
    ]
    assert re.findall(r'id="inv-([^"]+)"', by_provider) == ["I-1", "I-2", "I-4"]


def test_quarantined_invoices_are_listed_in_their_own_section(html):
    held = section(html, "<h2>Quarantined invoices: check by hand before payment</h2>")
    assert (
        "<tr><td>Q-1</td><td>PC</td><td>C-15</td><td class='num'>–</td>"
        "<td>cannot be scored: amount_sek &gt;= 0</td></tr>"
    ) in held
    assert 'id="inv-Q-1"' not in html
    assert "provider-PC" not in html


def test_summary_cards_and_run_identity(html):
    assert '<div class="card">Invoices received<b>1,234</b></div>' in html
    assert '<div class="card">Quarantined (cannot be scored)<b>1</b></div>' in html
    assert '<div class="card">Flagged for review<b>4</b></div>' in html
    assert '<div class="card">Invoiced on the flagged<b>14,846\u00a0SEK</b></div>' in html
    assert '<div class="card">In dispute on the flagged<b>12,846\u00a0SEK</b></div>' in html
    assert (
        "12,846\u00a0SEK in dispute on 14,846\u00a0SEK invoiced on the 4 flagged invoices "
        "(87% of that money)"
    ) in html
    assert "tillit-invoice-risk v3 (run abcdef123456)" in html
    assert "config cfg123" in html and "fp456" in html
    assert "the 2 highest risks" in html and "Scores at or above 0.9 mean a hard finding" in html


def test_charts_show_each_scorer_of_a_flagged_invoice(html):
    block = section(html, 'id="inv-I-1"', 'id="inv-I-2"')
    assert "Learned from past reviews (LightGBM)" in block
    assert "Unusualness model (IsolationForest)" in block
    assert "Far out in a feature's own tail (tail probabilities)" in unescape(block)
    assert block.count("<rect") == 5
    assert "Unusualness model" not in section(html, 'id="inv-I-2"', 'id="inv-I-4"')
    assert "own tail" not in section(html, 'id="inv-I-2"', 'id="inv-I-4"')
    assert "<svg" not in section(html, 'id="inv-I-4"', "<h2>")


def test_text_from_the_data_is_escaped(html):
    assert "<script" not in html
    assert "note &lt;script&gt;alert(1)&lt;/script&gt; in the visit log" in html
    assert "<li>hours &amp; minutes</li>" in html
    hostile = risk_list()
    hostile.loc[0, "provider_id"] = 'P"><img src=x>'
    hostile.loc[0, "findings"] = "<b>bold</b>"
    page = render_report(hostile, explanations(), summary(), {**RUN_INFO, "period": "<i>"})
    assert "<img" not in page and "<b>bold</b>" not in page and "<i>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


def test_the_page_needs_no_network(html):
    without_svg_namespace = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(
        r"https?:|//[a-z]|<link|<script|<iframe|@import|src=", without_svg_namespace
    )
    assert html.startswith("<!DOCTYPE html>\n") and html.endswith("</body>\n</html>\n")


def test_swedish_page_has_swedish_labels():
    page = render_report(risk_list(), explanations(), summary(), RUN_INFO, language="sv")
    assert '<html lang="sv">' in page
    for label in (
        "<h1>Fakturor att granska före utbetalning</h1>",
        "<h2>Granska först</h2>",
        "<h2>Flaggade fakturor per utförare</h2>",
        "<h2>Fakturor i karantän: kontrollera manuellt före utbetalning</h2>",
        "<b>Fynd</b>",
        "<b>Skäl</b>",
        '<div class="card">Mottagna fakturor<b>1\u00a0234</b></div>',
        '<div class="card">Fakturerat på de flaggade<b>14\u00a0846\u00a0kr</b></div>',
        "Utförare PB · 1 flaggad faktura · 12\u00a0346\u00a0kr fakturerat · "
        "12\u00a0346\u00a0kr ifrågasatt",
        "Plats",
        "Lärd av tidigare granskningar (LightGBM)",
    ):
        assert label in page, label
    for english in (
        "Look first",
        "Findings",
        "Reasons",
        "Provider ",
        " SEK<",
        "Invoices to review",
    ):
        assert english not in page, english


def test_swedish_page_names_why_flagged_in_swedish():
    page = render_report(risk_list(), explanations(), summary(), RUN_INFO, language="sv")
    assert ">stickprov</span>" in page
    for english in (">random check</span>", ">capacity</span>", ">hard finding</span>"):
        assert english not in page, english


def test_nothing_flagged_and_nothing_held_say_none():
    quiet = risk_list()
    quiet = quiet[quiet["status"] == "scored"].assign(flagged=False, why_flagged="")
    page = render_report(quiet, explanations().iloc[0:0], summary(flagged=0), RUN_INFO)
    assert "<h3" not in page and 'class="invoice"' not in page
    assert page.count("<p>None.</p>") == 2


# ------------------------------------------------------------------ contribution_chart


def test_contribution_chart_draws_one_bar_per_feature_red_raises_blue_lowers():
    svg = contribution_chart(pd.Series({"c": 0.1, "a": 0.5, "b": -0.25, "d": 0.0}))
    bars = re.findall(
        r'<rect x="([\d.]+)" y="(\d+)" width="([\d.]+)" height="16" fill="(#[0-9a-f]+)">'
        r"<title>([^<]+)</title>",
        svg,
    )
    # Largest magnitude first; the axis sits at 320 + 120 = 440; bars are scaled to 80 px.
    assert bars == [
        ("440.0", "0", "80.0", "#c0392b", "a: +0.50"),
        ("400.0", "20", "40.0", "#3461c1", "b: -0.25"),
        ("440.0", "40", "16.0", "#c0392b", "c: +0.10"),
        ("440.0", "60", "0.5", "#3461c1", "d: 0.00"),
    ]
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 560 80"')
    # Each bar carries its contribution as a number.
    assert re.findall(r'font-size="10" text-anchor="\w+">([^<]+)</text>', svg) == [
        "+0.50",
        "-0.25",
        "+0.10",
        "0.00",
    ]
    assert re.findall(r'<text x="0" y="\d+" font-size="11">([^<]+)</text>', svg) == [
        "a",
        "b",
        "c",
        "d",
    ]


def test_contribution_chart_labels_features_in_words_with_the_invoices_value():
    svg = contribution_chart(
        pd.Series({"billed_over_registered_hours": 0.5}),
        labels={"billed_over_registered_hours": "Billed hours divided by registered visit hours"},
        values={"billed_over_registered_hours": 3.5},
        language="sv",
    )
    assert re.findall(r'<text x="0" y="\d+" font-size="11">([^<]+)</text>', svg) == [
        "Billed hours divided by registered visit hours: 3,50"
    ]
    assert ">+0,50</text>" in svg


def test_a_long_chart_label_wraps_rather_than_being_cut_so_two_features_stay_apart():
    """On paper there is no tooltip: two labels that begin alike must both be read whole."""
    labels = {
        "a": "Billed hours divided by granted hours, summed over the billed of the last 12 months",
        "b": "Billed hours divided by granted hours",
    }
    svg = contribution_chart(pd.Series({"a": 0.5, "b": 0.25}), labels=labels, values={"a": 1.2})
    said = re.findall(r'<text x="0" y="(\d+)" font-size="11">([^<]+)</text>', svg)
    assert said == [
        ("12", "Billed hours divided by granted hours, summed"),
        ("24", "over the billed of the last 12 months: 1.20"),
        ("44", "Billed hours divided by granted hours"),
    ]
    # The second bar starts below the first label's second line; the chart is that tall.
    assert re.findall(r'<rect x="[\d.]+" y="(\d+)"', svg) == ["0", "32"]
    assert 'viewBox="0 0 560 52"' in svg


def test_contribution_chart_of_nothing_is_empty_and_labels_are_escaped():
    assert contribution_chart(pd.Series(dtype="float64")) == ""
    svg = contribution_chart(pd.Series({"<x>": 1.0}))
    assert "<x>" not in svg and "&lt;x&gt;" in svg
