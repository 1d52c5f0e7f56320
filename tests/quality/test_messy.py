"""A municipality unlike the one tillit was built on: the messy profile, base rates, the bounded list."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from tests.cli import ok, refused, tillit
from tillit.config import (
    BlendConfig,
    FeatureConfig,
    ReviewConfig,
    ScoringConfig,
    SimulationConfig,
    TrainingConfig,
)
from tillit.data.validate import validate_tables
from tillit.features import build_features
from tillit.features.catalog import FINDING_CODES
from tillit.modelling.base_rates import finding_base_rates, finding_patterns, hard_finding_mask
from tillit.modelling.train import train
from tillit.review.report import render_report
from tillit.review.score import INVOICE_COLUMNS, ModelIdentity, score_month
from tillit.review.triage import pattern_records, pattern_sentence
from tillit.simulate import PADDED_VISITS, simulate

IDENTITY = ModelIdentity("tillit-invoice-risk", "1", "run-messy")
NOTHING_HELD = pd.DataFrame(
    columns=[
        "invoice_id",
        "provider_id",
        "client_id",
        "period",
        "service_type",
        "amount_sek",
        "reason",
    ]
)


def _messy(seed: int, clients: int = 300, months: int = 5) -> object:
    return simulate(SimulationConfig(seed=seed, clients=clients, months=months, profile="messy"))


# ---------------------------------------------------------------------------
# The simulator's profiles


def test_tidy_profile_is_the_default_world():
    a = simulate(SimulationConfig(seed=4, clients=120, months=3))
    b = simulate(SimulationConfig(seed=4, clients=120, months=3, profile="tidy"))
    for name, table in a.tables.items():
        pd.testing.assert_frame_equal(table, b.tables[name])
    assert a.parameters == {}


def test_messy_profiles_are_a_family_drawn_by_seed_and_stay_within_the_contract():
    a, again, b = _messy(11, 200, 4), _messy(11, 200, 4), _messy(12, 200, 4)
    assert a.parameters == again.parameters
    pd.testing.assert_frame_equal(a.tables["visits"], again.tables["visits"])
    assert a.parameters != b.parameters
    # Every table passes the contract: the noise is honest data, not broken data.
    assert validate_tables(a.tables).quarantine.empty
    visits = a.tables["visits"]
    # Some visits run past midnight, some are long (forgotten check-outs).
    assert (visits["end_at"].dt.normalize() > visits["start_at"].dt.normalize()).any()
    assert ((visits["end_at"] - visits["start_at"]) > pd.Timedelta(hours=3)).any()
    # Some staff work for two providers.
    assert (visits.groupby("staff_id")["provider_id"].nunique() > 1).any()
    # The unlabelled scheme is planted and is in the truth only.
    truth = a.truth
    assert (truth["scheme"] == PADDED_VISITS).any()
    assert truth.loc[truth["scheme"] == PADDED_VISITS, "irregular"].all()


def test_simulate_command_takes_a_profile(tmp_path):
    out = ok(
        tillit(
            "simulate",
            "--out",
            "w",
            "--clients",
            "60",
            "--months",
            "3",
            "--profile",
            "messy",
            cwd=tmp_path,
        )
    )
    assert "profile messy, drawn by seed" in out.stdout
    assert (tmp_path / "w" / "truth.parquet").exists()
    refused(
        tillit("simulate", "--out", "x", "--profile", "chaotic", cwd=tmp_path),
        "--profile must be tidy or messy",
    )


# ---------------------------------------------------------------------------
# Base rates, measured on hand-built frames


def _frame(period: str, n: int, double_booked: int, provider: str = "P1") -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "invoice_id": [f"{period}-{i}" for i in range(n)],
            "provider_id": provider,
            "period": period,
            "amount_sek": 1000.0,
        }
    )
    for code in FINDING_CODES:
        frame[f"finding_{code}"] = 0.0
    frame.loc[: double_booked - 1, "finding_staff_double_booked"] = 1.0
    frame.loc[0, "finding_billing_after_death"] = 1.0
    return frame


def test_base_rates_count_shares_per_month_and_review_decisions():
    features = pd.concat([_frame("2025-01", 100, 10), _frame("2025-02", 100, 30)])
    labels = pd.DataFrame(
        {"invoice_id": ["2025-01-0", "2025-01-1", "2025-01-50"], "label": [1, 0, 0]}
    )
    rates = finding_base_rates(features, labels, FINDING_CODES)
    assert rates["staff_double_booked"]["month_share_mean"] == pytest.approx(0.20)
    assert rates["staff_double_booked"]["month_share_max"] == pytest.approx(0.30)
    assert rates["staff_double_booked"]["provider_share_median"] == pytest.approx(0.20)
    assert rates["staff_double_booked"]["reviewed"] == 2
    assert rates["staff_double_booked"]["cleared_share"] == pytest.approx(0.5)
    assert rates["billing_after_death"]["month_share_mean"] == pytest.approx(0.01)
    assert np.isnan(rates["duplicate_invoice"]["cleared_share"])


def test_a_finding_on_many_invoices_of_the_month_is_demoted_to_a_pattern():
    month = _frame("2025-03", 200, 164)  # 82 % of the month
    patterns = finding_patterns(month, {}, BlendConfig(), FINDING_CODES)
    demoted = patterns.loc[patterns["demoted"], "finding"].tolist()
    assert demoted == ["staff_double_booked"]
    hard = hard_finding_mask(month, patterns, FINDING_CODES)
    # Only the rare finding (billing after death, on invoice 0) still lifts an invoice.
    assert hard.tolist() == [True] + [False] * 199
    record = {
        "finding": "staff_double_booked",
        "invoices_with_it": 164,
        "month_share": 0.82,
        "history_month_share": 0.8,
        "why": "fires on 82% of the month's invoices",
    }
    assert pattern_sentence(record).startswith(
        "staff overlaps are registered on 82% of this month's invoices (164) "
        "(in the training months: 80%); fires on 82% of the month's invoices: "
        "treated as a recording habit, not a finding"
    )
    # In a Swedish report the reason why is Swedish too.
    (swedish,) = [pattern_sentence(r, "sv") for r in pattern_records(patterns)]
    assert "(164 st; finns på 82\u00a0% av månadens fakturor)" in swedish
    assert "fires on" not in swedish
    # A small month is not judged by its share: 9 of 10 is no base rate.
    assert not finding_patterns(_frame("2025-03", 10, 9), {}, BlendConfig(), FINDING_CODES)[
        "demoted"
    ].any()


def test_a_finding_reviews_mostly_cleared_is_demoted():
    month = _frame("2025-03", 200, 4)
    history = {"staff_double_booked": {"reviewed": 20.0, "cleared_share": 0.9}}
    patterns = finding_patterns(month, history, BlendConfig(), FINDING_CODES).set_index("finding")
    assert patterns.loc["staff_double_booked", "demoted"]
    assert "past reviews cleared 90% of 20" in patterns.loc["staff_double_booked", "why"]
    assert not patterns.loc["billing_after_death", "demoted"]


# ---------------------------------------------------------------------------
# Quality floors on a messy honest month


@pytest.fixture(scope="module")
def messy_month():
    sim = _messy(11, clients=400, months=6)
    tables = validate_tables(sim.tables).tables
    periods = sorted(tables["invoices"]["period"].unique())
    result = train(tables, TrainingConfig(), FeatureConfig(), ReviewConfig(), sim.truth)
    feature_set = build_features(tables, periods[-1], FeatureConfig())
    return {
        "sim": sim,
        "tables": tables,
        "model": result.model,
        "set": feature_set,
        "result": result,
    }


def test_no_honest_invoice_of_a_messy_month_is_a_double_booking(messy_month):
    fs, truth = messy_month["set"], messy_month["sim"].truth
    booked = fs.findings.loc[fs.findings["finding"] == "staff_double_booked", "invoice_id"]
    honest = set(truth.loc[~truth["irregular"], "invoice_id"])
    assert not set(booked) & honest
    # The month does carry registration noise: staff overlaps on many honest invoices.
    overlapping = fs.features.loc[fs.features["staff_overlap_minutes"] > 0, "invoice_id"]
    assert len(set(overlapping) & honest) > 0.05 * len(fs.features)


def test_the_flagged_share_of_a_messy_month_respects_the_bound(messy_month):
    fs = messy_month["set"]
    review = ReviewConfig()
    month = score_month(
        messy_month["model"], fs.features, fs.findings, NOTHING_HELD, review, IDENTITY
    )
    n = len(fs.features)
    flagged = int(month.risk_list["flagged"].sum())
    assert flagged <= review.k(n) + review.random_checks(n) + review.findings_bound(n)
    assert flagged / n <= 0.15
    # Findings are rare and precise here: most invoices with one are irregular.
    truth = messy_month["sim"].truth.set_index("invoice_id")["irregular"]
    with_finding = fs.findings["invoice_id"].unique()
    assert truth.reindex(with_finding).mean() >= 0.9


def test_many_findings_are_bounded_summarised_and_the_report_stays_small(messy_month):
    fs = messy_month["set"]
    # Force every invoice to carry a finding no review has judged: the list must stay bounded.
    features = fs.features.assign(finding_service_without_grant=1.0, hard_finding_count=1.0)
    model = messy_month["model"]
    lenient = BlendConfig(finding_max_month_share=1.0)
    model_lenient = type(model)(**{**model.__dict__, "blend": lenient})
    review = ReviewConfig()
    month = score_month(model_lenient, features, fs.findings, NOTHING_HELD, review, IDENTITY)
    n = len(features)
    assert month.risk_list["flagged"].sum() <= 2 * review.k(n) + review.random_checks(n)
    assert month.summary["findings_beyond_bound"] > 0.5 * n
    html = render_report(
        month.risk_list,
        month.explanations,
        {**month.summary, **month.triage},
        {"period": "x"},
        detailed_invoices=5,
    )
    assert html.count('class="invoice"') == 5
    assert "Appendix: every provider with an invoice this month" in html
    assert "beyond the bound" in html
    # The same month with the default share: the finding is a pattern, stated in words.
    stated = score_month(model, features, fs.findings, NOTHING_HELD, review, IDENTITY)
    patterns = [p["finding"] for p in stated.triage["patterns"]]
    assert patterns == ["service_without_grant"]
    page = render_report(
        stated.risk_list, stated.explanations, {**stated.summary, **stated.triage}, {"period": "x"}
    )
    assert "services billed without a grant are registered on 100% of this month" in page
    assert stated.risk_list["flagged"].sum() <= review.k(n) + review.random_checks(
        n
    ) + review.findings_bound(n)


def test_ranking_on_a_messy_month_beats_the_rule_and_chance(messy_month):
    # 400 clients give few labels (LightGBM is near chance here); measured: AP 0.57,
    # recall@k 0.56, the rule 0.33. The full-size figures are in bench/robustness.py.
    metrics = messy_month["result"].evaluation.metrics
    assert metrics["combined_average_precision"] >= 0.45
    rule = metrics["rule_billed_over_registered_average_precision"]
    assert metrics["combined_average_precision"] > rule + 0.15
    assert metrics["combined_recall_at_k"] >= 0.45


@pytest.fixture(scope="module")
def messy_march(messy_month):
    """March's features, for both languages: the same carer at two clients at once (3 double
    bookings), deaths, a hospital stay, a service without grant (the last month has no
    double booking)."""
    return build_features(messy_month["tables"], "2025-03", FeatureConfig())


@pytest.mark.parametrize("language", ["en", "sv"])
def test_no_text_of_a_messy_month_names_a_client_or_a_board_person(
    messy_month, messy_march, language
):
    """The privacy policy (docs/risk-list.md) over the whole risk list and explanations.

    Every text column (reasons, findings with their evidence, why flagged; the
    explanations' words) names no client id of clients.parquet and no board person's id
    of provider_persons.parquet; the invoice's own client is the risk list's `client_id`
    column. A carer appears only by pseudonymous staff id, as the carer of a comparison
    (of two registrations at once: in the reasons and in the double-booking evidence).
    """
    tables, fs = messy_month["sim"].tables, messy_march
    month = score_month(
        messy_month["model"],
        fs.features,
        fs.findings,
        NOTHING_HELD,
        ReviewConfig(),
        IDENTITY,
        ScoringConfig(language=language),
    )
    ids = set(INVOICE_COLUMNS)
    texts = [
        text
        for frame in (month.risk_list, month.explanations)
        for column in frame.columns
        if column not in ids and pd.api.types.is_string_dtype(frame[column])
        for text in frame[column].dropna().astype(str)
    ]
    kinds = {"staff_double_booked", "billing_after_death", "visits_after_death"}
    assert kinds <= set(fs.findings["finding"])  # the findings that named a client before
    tokens = set(_tokens(texts))
    assert any(token.startswith("V") for token in tokens)  # visit ids are there to check
    people = set(tables["clients"]["client_id"]) | set(tables["provider_persons"]["person_id"])
    assert not tokens & people, sorted(tokens & people)[:5]
    findings = " ".join(month.risk_list["findings"])
    assert findings.count({"en": "at another client", "sv": "hos en annan brukare"}[language]) >= 3
    assert {"en": "the client died", "sv": "brukaren avled"}[language] in findings
    # A carer's staff id, wherever it is in a text, only as a carer named by the word
    # ("carer S1 ..."; sv "personal S1"), as every reason and evidence
    # template that holds a staff id says it (i18n/reasons.py `evidence_*_staff`, the
    # double-booking evidence). This month has the reasons' and the evidence's comparison.
    staff = set(tables["visits"]["staff_id"])
    named = Counter(token for token in _tokens(texts) if token in staff)
    as_carer = {"en": r"\bcarer ([A-Za-z]+\d+)", "sv": r"\bpersonal ([A-Za-z]+\d+)"}
    assert named == Counter(t for t in _tokens(texts, as_carer[language]) if t in staff)
    comparisons = {
        "en": (r"\bcarer (\w+) was registered here on ", r"\bcarer (\w+): visit V\d+ \("),
        "sv": (r"\bpersonal (\w+) var registrerad här ", r"\bpersonal (\w+): besök V\d+ \("),
    }[language]
    assert all(_tokens(texts, form) for form in comparisons)


def _tokens(texts: list[str], pattern: str = r"[A-Za-z]+\d+") -> list[str]:
    """Every match of `pattern` (its group, when it has one) in every text."""
    return [token for text in texts for token in re.findall(pattern, text)]
