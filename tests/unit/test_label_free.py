"""The label-free side: staff-level and own-history features, the tail probability scorer."""

from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_features import build, client, grant, invoice, municipality, row, visit
from tillit.config import BlendConfig, TrainingConfig
from tillit.features import EVIDENCE_COLUMNS
from tillit.features.catalog import one_fact_groups, provider_level
from tillit.modelling.explain import explain
from tillit.modelling.risk_model import fit_risk_model
from tillit.modelling.scorers import (
    IsolationForestScorer,
    LightGBMScorer,
    TailProbabilityScorer,
    tail_probability_scorer,
)
from tillit.review.reasons import reason_sentence

# ---------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------


def test_a_carers_day_across_providers_and_their_registrations_everywhere():
    visits = [
        # S1: 17 h on 2026-03-03 across two providers; nfc at P1, typed in at P2.
        visit("V1", "C1", "2026-03-03 06:00", 8 * 60),
        visit("V2", "C2", "2026-03-03 14:00", 9 * 60, provider_id="P2", method="manual"),
        visit("V3", "C1", "2026-03-05 08:00", 60),
        visit("V4", "C1", "2026-03-06 08:00", 60),
        # S2: only typed-in registrations at P1, one at C1 and one at C3.
        visit("V5", "C1", "2026-03-07 08:00", 120, staff_id="S2", method="manual"),
        visit("V6", "C3", "2026-03-07 12:00", 60, staff_id="S2", method="manual"),
        # S3 at C3: one app check-in, one day at one provider only.
        visit("V7", "C3", "2026-03-08 12:00", 60, staff_id="S3", method="app"),
    ]
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2", provider_id="P2"), grant("G3", "C3")],
        visits=visits,
        invoices=[
            invoice("I1", "C1", 12.0),
            invoice("I2", "C2", 9.0, provider_id="P2"),
            invoice("I3", "C3", 2.0),
        ],
    )
    fs = build(tables)
    i1, i2, i3 = row(fs, "I1"), row(fs, "I2"), row(fs, "I3")
    # The day S1 visited C1 (and C2 for P2) adds up to 17 h; I3's carers had no such day.
    assert i1["max_staff_day_hours_across_providers"] == 17.0
    assert i2["max_staff_day_hours_across_providers"] == 17.0
    assert i3["max_staff_day_hours_across_providers"] == 0.0
    # Per visit, its carer's typed-in share everywhere: S1 1/4 (x3 visits), S2 2/2 (x1).
    assert i1["staff_manual_registration_share"] == pytest.approx((3 * 0.25 + 1.0) / 4)
    assert i3["staff_manual_registration_share"] == pytest.approx((1.0 + 0.0) / 2)
    # Hours by carers with no key-tag or app check-in at the provider: S2's 2 h of 12 h;
    # at P2, S1 only typed in, so all of I2's hours.
    assert i1["staff_only_by_hand_hours_share"] == pytest.approx(2 / 12)
    assert i2["staff_only_by_hand_hours_share"] == 1.0
    assert i3["staff_only_by_hand_hours_share"] == pytest.approx(1 / 2)
    assert i1["regular_staff_hours_share"] == 0.0


def test_too_regular_carers_need_enough_visits_of_nearly_one_length():
    # S1: 8 visits of exactly 45 min (regular); S2: 7 (too few to tell); S3: 8 varied.
    s1 = [visit(f"A{d}", "C1", f"2026-03-{d:02d} 09:00", 45) for d in range(1, 9)]
    s2 = [visit(f"B{d}", "C2", f"2026-03-{d:02d} 09:00", 45, staff_id="S2") for d in range(1, 8)]
    s3 = [
        visit(f"D{d}", "C3", f"2026-03-{d:02d} 09:00", 30 + 10 * d, staff_id="S3")
        for d in range(1, 9)
    ]
    # One more visit at C1 by the varied carer: the regular share is by hours.
    s3.append(visit("D9", "C1", "2026-03-20 09:00", 120, staff_id="S3"))
    tables = municipality(
        grants=[grant("G1", "C1"), grant("G2", "C2"), grant("G3", "C3")],
        visits=s1 + s2 + s3,
        invoices=[invoice("I1", "C1", 8.0), invoice("I2", "C2", 5.25), invoice("I3", "C3", 9.0)],
    )
    fs = build(tables)
    assert row(fs, "I1")["regular_staff_hours_share"] == pytest.approx(6.0 / 8.0)
    assert row(fs, "I2")["regular_staff_hours_share"] == 0.0
    assert row(fs, "I3")["regular_staff_hours_share"] == 0.0
    # A looser definition counts S2 as regular too.
    loose = build(tables, regular_staff_min_visits=7)
    assert row(loose, "I2")["regular_staff_hours_share"] == 1.0


def billed_months(plan: dict[str, dict[str, tuple[float, int]]]) -> tuple[list, list]:
    """Visits (one hour a day) and invoices from {month: {client: (billed, registered h)}}."""
    visits, invoices = [], []
    for month, by_client in plan.items():
        for cid, (billed, hours) in by_client.items():
            visits += [
                visit(f"V{month}{cid}{d}", cid, f"{month}-{d:02d} 10:00", 60)
                for d in range(1, int(hours) + 1)
            ]
            invoices.append(invoice(f"I{month}{cid}", cid, billed, period=month))
    return visits, invoices


def test_an_invoice_against_its_own_and_its_providers_earlier_months():
    # C1 at P1: billed 10 and 14 h in January and February (registered 10 and 14),
    # 24 h in March against 16 registered. C2 is new in March (registered 8, billed 8).
    # August 2025 lies outside the 6 months before March (2025-09 .. 2026-02 count).
    plan = {
        "2025-08": {"C1": (100.0, 1)},
        "2026-01": {"C1": (10.0, 10)},
        "2026-02": {"C1": (14.0, 14)},
        "2026-03": {"C1": (24.0, 16), "C2": (8.0, 8)},
    }
    visits, invoices = billed_months(plan)
    tables = municipality(
        grants=[grant("G1", "C1", hours=30.0), grant("G2", "C2", hours=30.0)],
        visits=visits,
        invoices=invoices,
    )
    fs = build(tables)
    c1, c2 = row(fs, "I2026-03C1"), row(fs, "I2026-03C2")
    assert c1["billed_over_own_history_hours_6m"] == pytest.approx(24.0 / 12.0)
    assert c2["billed_over_own_history_hours_6m"] == 1.0  # nothing earlier to compare with
    # P1 billed 32 h against 24 registered in March; 24 against 24 in its earlier months.
    change = (32.0 / 24.0) / (24.0 / 24.0)
    assert c1["provider_billed_over_registered_change_6m"] == pytest.approx(change)
    assert c2["provider_billed_over_registered_change_6m"] == pytest.approx(change)


def test_typed_in_share_and_provider_visit_length_against_their_own_earlier_months():
    # C1: 60 min visits in January, 45 in February, 90 in March, when half are typed in.
    # C2: 60 -> 90 min with its grant doubled in March. C3: new in March.
    plan = {
        "2026-01": {"C1": 60, "C2": 60},
        "2026-02": {"C1": 45, "C2": 60},
        "2026-03": {"C1": 90, "C2": 90, "C3": 60},
    }
    visits, invoices = [], []
    for month, by_client in plan.items():
        for cid, minutes in by_client.items():
            visits += [
                visit(
                    f"V{month}{cid}{d}",
                    cid,
                    f"{month}-{d:02d} 10:00",
                    minutes,
                    staff_id=f"S{cid}",
                    method="manual" if month == "2026-03" and cid == "C1" and d <= 5 else "nfc",
                )
                for d in range(1, 11)
            ]
            invoices.append(invoice(f"I{month}{cid}", cid, 10 * minutes / 60, period=month))
    tables = municipality(
        grants=[
            grant("G1", "C1", hours=30.0),
            grant("G2", "C2", hours=10.0, valid_to="2026-02-28"),
            grant("G3", "C2", hours=20.0, valid_from="2026-03-01"),
            grant("G4", "C3", hours=30.0),
        ],
        visits=visits,
        invoices=invoices,
    )
    fs = build(tables)
    c1, c2, c3 = row(fs, "I2026-03C1"), row(fs, "I2026-03C2"), row(fs, "I2026-03C3")
    assert c1["manual_share_rise_over_own_history_6m"] == pytest.approx(0.5)
    assert c2["manual_share_rise_over_own_history_6m"] == 0.0
    assert c3["manual_share_rise_over_own_history_6m"] == 0.0
    # P1's personal care visits: 1 h on average in January, 0.875 h in February (the
    # shortest), (10 x 1.5 + 10 x 1.5 + 10 x 1) / 30 h in March.
    change = (40 / 30) / 0.875
    for r in (c1, c2, c3):
        assert r["provider_visit_length_change_6m"] == pytest.approx(change)
    # The reason names the month compared with and both mean lengths.
    assert reason_sentence("provider_visit_length_change_6m", c3, 1.0, "sv") == (
        "utförarens besök inom personlig omvårdnad varade i genomsnitt 80 min under 2026-03 "
        "mot 52 min under 2026-02, dess kortaste tidigare månad: 1,52 gånger; typiskt är 1"
    )
    # With fewer than `own_history_min_visits` visits a month, nothing is compared.
    few = build(tables, own_history_min_visits=11)
    assert row(few, "I2026-03C1")["manual_share_rise_over_own_history_6m"] == 0.0
    assert row(few, "I2026-03C1")["provider_visit_length_change_6m"] == pytest.approx(change)


def test_visits_whose_carer_was_registered_at_another_client_at_the_same_time():
    visits = [
        # S1 at C1 and C2 at once, begun 5 min apart: both visits count.
        visit("V1", "C1", "2026-03-03 10:00", 60, method="app"),
        visit("V2", "C2", "2026-03-03 10:05", 50, method="manual"),
        visit("V1b", "C1", "2026-03-10 10:00", 60),
        # S2's late check-outs run into the next visit: neither counts.
        visit("V3", "C3", "2026-03-04 08:00", 70, staff_id="S2", method="app"),
        visit("V4", "C4", "2026-03-04 09:00", 30, staff_id="S2"),
        visit("V5", "C3", "2026-03-04 12:00", 50, staff_id="S2", method="manual"),
        visit("V6", "C4", "2026-03-04 12:30", 30, staff_id="S2", method="app"),
        # S3 checked in by key-tag at C4 while typed in at C3: the typed-in visit counts,
        # the key-tag visit never does.
        visit("V7", "C4", "2026-03-05 14:00", 60, staff_id="S3"),
        visit("V8", "C3", "2026-03-05 14:20", 30, staff_id="S3", method="manual"),
    ]
    tables = municipality(
        grants=[grant(f"G{i}", f"C{i}") for i in range(1, 5)],
        visits=visits,
        invoices=[
            invoice("I1", "C1", 2.0),
            invoice("I2", "C2", 50 / 60),
            invoice("I3", "C3", 2.5),
            invoice("I4", "C4", 2.0),
        ],
    )
    fs = build(tables)
    share = {i: row(fs, i)["staff_elsewhere_hours_share"] for i in ("I1", "I2", "I3", "I4")}
    assert share["I1"] == pytest.approx(60 / 120)
    assert share["I2"] == pytest.approx(1.0)
    assert share["I3"] == pytest.approx(30 / 150)
    assert share["I4"] == 0.0
    # S2's second pair began 30 minutes apart, neither by key-tag: a wider gap counts V6
    # (20 of its 30 minutes inside V5), not V5 (20 of 50).
    wider = build(tables, same_time_max_start_gap_minutes=30.0).features.set_index("invoice_id")
    assert wider["staff_elsewhere_hours_share"]["I4"] == pytest.approx(30 / 120)
    assert wider["staff_elsewhere_hours_share"]["I3"] == pytest.approx(30 / 150)
    # The reason names the carer, both visits and the key-tag at the other door, not the
    # other client: the facts it reads, and no evidence column holds a client's id.
    i1, i3 = row(fs, "I1"), row(fs, "I3")
    facts = ["staff", "date", "other_date", "other_keytag", "visits", "hours"]
    assert [i3[f"evidence_elsewhere_{fact}"] for fact in facts] == [
        "S3",
        "2026-03-05 14:20-14:50",
        "2026-03-05 14:00-15:00",
        1.0,
        1.0,
        0.5,
    ]
    # Every id-like word of every cell, so an id inside a longer text is caught too.
    evidence = fs.features[list(EVIDENCE_COLUMNS)].astype(str).to_numpy().ravel()
    words = {word for cell in evidence for word in re.findall(r"[A-Za-z]+\d+", str(cell))}
    assert "S3" in words
    assert not words & {"C1", "C2", "C3", "C4"}
    assert reason_sentence("staff_elsewhere_hours_share", i3, 0.0, "en") == (
        "carer S3 was registered here on 2026-03-05 14:20-14:50 and at another client on "
        "2026-03-05 14:00-15:00 (checked in there by key-tag); 1 such visit on this "
        "invoice, 0.5 of 2.5 h (20%)"
    )
    assert reason_sentence("staff_elsewhere_hours_share", i1, 0.0, "sv") == (
        "personal S1 var registrerad här 2026-03-03 10:00-11:00 och hos en annan brukare "
        "2026-03-03 10:05-10:55; 1 sådant besök på fakturan, 1 av 2 h (50\u00a0%)"
    )
    assert pd.isna(row(fs, "I4")["evidence_elsewhere_staff"])


def test_a_key_tag_read_hours_before_says_nothing_about_where_the_carer_is_now():
    visits = [
        # S1 tagged in at C1 at 08:00 and forgot to tag out (the end filled in at 14:00):
        # the app visits at C2 and C3 later that morning are not "registered elsewhere".
        visit("V1", "C1", "2026-03-03 08:00", 360),
        visit("V2", "C2", "2026-03-03 09:00", 45, method="app"),
        visit("V3", "C3", "2026-03-03 10:30", 45, method="app"),
        # S2 tagged in at C1 10 minutes before a typed-in visit at C4: that one counts
        # (within `keytag_max_lead_minutes`, 30).
        visit("V4", "C1", "2026-03-04 09:50", 60, staff_id="S2"),
        visit("V5", "C4", "2026-03-04 10:00", 40, staff_id="S2", method="manual"),
    ]
    tables = municipality(
        grants=[grant(f"G{i}", f"C{i}") for i in range(1, 5)],
        visits=visits,
        invoices=[
            invoice("I1", "C1", 7.0),
            invoice("I2", "C2", 0.75),
            invoice("I3", "C3", 0.75),
            invoice("I4", "C4", 40 / 60),
        ],
    )
    share = build(tables).features.set_index("invoice_id")["staff_elsewhere_hours_share"]
    assert share.to_dict() == {"I1": 0.0, "I2": 0.0, "I3": 0.0, "I4": pytest.approx(1.0)}
    # With a lead of 60 minutes the tag read at 08:00 covers V2 (begun 09:00), not V3.
    wider = build(tables, keytag_max_lead_minutes=60.0).features.set_index("invoice_id")
    assert wider["staff_elsewhere_hours_share"]["I2"] == pytest.approx(1.0)
    assert wider["staff_elsewhere_hours_share"]["I3"] == 0.0


def test_new_comparisons_are_worded_in_both_languages():
    features = pd.DataFrame(
        {
            "service_type": ["personal_care"],
            "billed_hours": [24.0],
            "max_staff_day_hours_across_providers": [17.0],
            "billed_over_own_history_hours_6m": [2.0],
        }
    )
    r = features.iloc[0]
    assert reason_sentence("max_staff_day_hours_across_providers", r, 0.0, "en") == (
        "a carer on this invoice registered 17 h in one day across two or more providers, "
        "on a day of visits to this client"
    )
    assert reason_sentence("max_staff_day_hours_across_providers", r, 0.0, "sv").startswith(
        "en av fakturans personal registrerade 17 h under en dag"
    )
    assert reason_sentence("billed_over_own_history_hours_6m", r, 1.0, "en") == (
        "billed 24 h, 2 times the same client's earlier months; typical for personal care is 1"
    )


def test_own_history_comparisons_of_visits_are_worded():
    r = pd.DataFrame(
        {
            "service_type": ["personal_care"],
            "billed_hours": [24.0],
            "manual_share_rise_over_own_history_6m": [0.5],
            "provider_visit_length_change_6m": [1.35],
        }
    ).iloc[0]
    # Without the evidence columns (a feature table from before them): the plain sentence.
    assert reason_sentence("provider_visit_length_change_6m", r, 1.0, "en") == (
        "the provider's personal care visits are 1.35 times as long as in its shortest "
        "earlier month; typical is 1"
    )
    assert reason_sentence("manual_share_rise_over_own_history_6m", r, 0.0, "sv").startswith(
        "50\u00a0% fler av besöken registrerade i efterhand"
    )


# ---------------------------------------------------------------------------
# The tail probability scorer
# ---------------------------------------------------------------------------


def _training() -> pd.DataFrame:
    return pd.DataFrame(
        {"billed_ratio": [0.0, 0.0, 0.0, 1.0, 2.0], "spread": [1.0, 2.0, 3.0, 4.0, 5.0]}
    )


def test_tail_scores_are_minus_log_tail_shares_summed_over_features():
    scorer = TailProbabilityScorer(lower_tail=("spread",)).fit(_training())
    X = pd.DataFrame({"billed_ratio": [2.0, 0.0, 5.0], "spread": [3.0, 1.0, 0.0]})
    terms = scorer.feature_terms(X)
    # billed_ratio, upper tail: 1 of 5 at or above 2 -> -log(2/6); all 5 at or above 0 -> 0;
    # none at or above 5 -> -log(1/6). spread, lower tail: 3 of 5 at or below 3 -> -log(4/6).
    expected = np.array(
        [
            [math.log(3.0), math.log(6 / 4)],
            [0.0, math.log(3.0)],
            [math.log(6.0), math.log(6.0)],
        ]
    )
    np.testing.assert_allclose(terms, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scorer.risk_score(X), expected.sum(axis=1), rtol=0, atol=1e-12)


def test_a_feature_with_one_value_in_training_is_not_judged():
    # A growth window that has not filled yet: 1 on every training invoice.
    train = _training().assign(growth=1.0)
    scorer = TailProbabilityScorer().fit(train)
    X = pd.DataFrame({"billed_ratio": [2.0], "spread": [1.0], "growth": [1.3]})
    # growth would be beyond all 5 training values (-log(1/6)); it counts 0 instead.
    np.testing.assert_allclose(
        scorer.feature_terms(X), [[math.log(3.0), 0.0, 0.0]], rtol=0, atol=1e-12
    )
    # A scorer pickled before this judged every feature, and still does.
    old = pickle.loads(pickle.dumps(scorer))
    del old.judged_
    assert old.feature_terms(X)[0, 2] == pytest.approx(math.log(6.0))


def test_tail_attributions_add_up_to_the_score_and_refits_are_identical():
    rng = np.random.default_rng(3)
    train = pd.DataFrame(rng.lognormal(size=(500, 4)), columns=["a", "b", "c", "d"])
    train["b"] = np.round(train["b"])  # ties and a mass at a few values
    config = TrainingConfig.model_validate({"tail_probability": {"max_reference": 64}})
    first = tail_probability_scorer(config, ("d",)).fit(train)
    second = tail_probability_scorer(config, ("d",)).fit(train)
    X = pd.DataFrame(rng.lognormal(size=(40, 4)), columns=["a", "b", "c", "d"])
    assert first.reference_.shape == (4, 64)
    np.testing.assert_array_equal(first.risk_score(X), second.risk_score(X))
    attribution = explain(first, X)
    assert attribution.method == "additive"
    assert attribution.max_additivity_error() < 1e-9
    np.testing.assert_allclose(attribution.output, first.risk_score(X), rtol=0, atol=1e-12)
    # The base value is the mean training score: the training rows' attributions average 0.
    on_train = explain(first, train)
    assert on_train.base_value == pytest.approx(first.risk_score(train).mean())
    np.testing.assert_allclose(on_train.values.mean(axis=0), 0.0, atol=1e-9)


def test_risk_model_combines_the_label_free_scorers_by_rank():
    rng = np.random.default_rng(5)
    features = pd.DataFrame(rng.normal(size=(300, 3)), columns=["x", "y", "z"])
    features["hard_finding_count"] = 0.0
    labels = (features["x"] > 1.0).astype(int).to_numpy()
    columns = ["x", "y", "z"]
    X = features[columns]
    iso = IsolationForestScorer(n_estimators=20, random_state=0).fit(X)
    gbm = LightGBMScorer(n_estimators=10, min_child_samples=5).fit(X, labels)
    tail = TailProbabilityScorer().fit(X)
    blend = BlendConfig(label_free_isolation_forest_weight=0.25)
    both = fit_risk_model(iso, gbm, features, columns, columns, blend, ["2026-01"], "1", tail)
    forest_only = fit_risk_model(iso, gbm, features, columns, columns, blend, ["2026-01"], "1")
    parts = both.components(features)
    assert parts["label_free_percentile"].between(0, 1).all()
    assert both.label_free_weights() == {"isolation_forest": 0.25, "tail_probability": 0.75}
    # The rank mix is put back on the training invoices' percentile scale.
    mix = 0.25 * parts["isolation_forest_percentile"] + 0.75 * parts["tail_probability_percentile"]
    in_mix_order = parts["label_free_percentile"].to_numpy()[np.argsort(mix.to_numpy())]
    assert (np.diff(in_mix_order) >= 0).all()
    assert parts["label_free_percentile"].mean() == pytest.approx(0.5, abs=1e-9)
    # The default blend: noisy-or of the two percentiles (each squeezed by 1e-6 below 1),
    # LightGBM's weight 0.45.
    a = parts["lightgbm_percentile"] * (1 - 1e-6)
    b = parts["label_free_percentile"] * (1 - 1e-6)
    np.testing.assert_allclose(
        parts["blend"], 1 - (1 - a) ** 0.45 * (1 - b) ** 0.55, rtol=0, atol=1e-15
    )
    # A model without the second scorer (trained before it) keeps the forest alone.
    old = forest_only.components(features)
    assert forest_only.label_free_weights() == {"isolation_forest": 1.0}
    np.testing.assert_array_equal(old["label_free_percentile"], old["isolation_forest_percentile"])
    assert old["tail_probability_score"].isna().all()


def test_typed_in_share_is_also_compared_within_the_provider_size_band():
    # P1 has 20 clients (size band 20-99), P2 one (1-19). Per invoice one visit by its
    # own carer: typed in at C01-C04 of P1 and at P2's client, key tag elsewhere.
    clients = [f"C{i:02d}" for i in range(1, 22)]
    visits, invoices, grants = [], [], []
    for i, cid in enumerate(clients[:20], start=1):
        method = "manual" if i <= 4 else "nfc"
        visits.append(visit(f"V{i}", cid, "2026-03-02 10:00", 60, staff_id=f"S{i}", method=method))
        invoices.append(invoice(f"I{i:02d}", cid, 1.0))
        grants.append(grant(f"G{i}", cid))
    visits.append(
        visit("W1", "C21", "2026-03-02 10:00", 60, staff_id="T1", method="manual", provider_id="P2")
    )
    invoices.append(invoice("J1", "C21", 1.0, provider_id="P2"))
    grants.append(grant("H1", "C21", provider_id="P2"))
    tables = municipality(
        clients=[client(c) for c in clients], grants=grants, visits=visits, invoices=invoices
    )
    fs = build(tables)
    # P1's band: median 0, MAD 0 -> the floor 0.05 (x 1.4826 is below it): 1 / 0.05 = 20.
    assert row(fs, "I01")["staff_manual_registration_share_peer_z"] == pytest.approx(20.0)
    assert row(fs, "I10")["staff_manual_registration_share_peer_z"] == 0.0
    # P2 is alone in its band: its own median, so 0 where across all providers it is 20.
    assert row(fs, "J1")["staff_manual_registration_share_peer_z"] == 0.0
    assert row(fs, "J1")["manual_registration_share_peer_z"] == pytest.approx(20.0)


def test_tail_score_sums_only_each_invoices_largest_terms_and_still_adds_up():
    train = _training()
    every = TailProbabilityScorer(lower_tail=("spread",)).fit(train)
    top = TailProbabilityScorer(lower_tail=("spread",), top_k=1).fit(train)
    X = pd.DataFrame({"billed_ratio": [2.0, 0.0, 5.0], "spread": [3.0, 1.0, 0.0]})
    # Terms as in the test above; with top_k=1 each row keeps its largest, the other is 0.
    # Row 3 ties (log 6 twice): the earlier column is kept.
    np.testing.assert_allclose(
        top.feature_terms(X),
        [[math.log(3.0), 0.0], [0.0, math.log(3.0)], [math.log(6.0), 0.0]],
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        top.risk_score(X), [math.log(3.0), math.log(3.0), math.log(6.0)], rtol=0, atol=1e-12
    )
    # Summing at least as many terms as there are features is the plain sum.
    all_kept = TailProbabilityScorer(lower_tail=("spread",), top_k=2).fit(train)
    np.testing.assert_array_equal(all_kept.risk_score(X), every.risk_score(X))
    attribution = explain(top, X)
    assert attribution.max_additivity_error() < 1e-12
    assert attribution.output_name == "sum of the 1 largest per-feature -log tail probabilities"
    assert explain(top, train).values.mean(axis=0).abs().max() < 1e-12


def test_models_pickled_before_top_k_score_as_before():
    rng = np.random.default_rng(7)
    features = pd.DataFrame(rng.lognormal(size=(200, 12)), columns=[f"f{i}" for i in range(12)])
    features["hard_finding_count"] = 0.0
    columns = [f"f{i}" for i in range(12)]
    X = features[columns]
    iso = IsolationForestScorer(n_estimators=20, random_state=0).fit(X)
    gbm = LightGBMScorer(n_estimators=10, min_child_samples=5).fit(X, (X["f0"] > 2).astype(int))
    # A model of before: every term summed, the forest at half the label-free mix.
    config = TrainingConfig.model_validate({"tail_probability": {"top_k": 0}})
    tail = tail_probability_scorer(config, ()).fit(X)
    blend = BlendConfig(label_free_isolation_forest_weight=0.5)
    model = fit_risk_model(iso, gbm, features, columns, columns, blend, ["2026-01"], "1", tail)
    before = model.components(features)
    old = pickle.loads(pickle.dumps(model))
    del old.tail_probability.__dict__["top_k"]  # what a scorer pickled before it holds
    pd.testing.assert_frame_equal(old.components(features), before)
    np.testing.assert_array_equal(
        old.tail_probability.risk_score(X), tail.feature_terms(X).sum(axis=1)
    )
    # New defaults: the 8 largest terms, the forest a tenth of the label-free mix.
    assert TrainingConfig().tail_probability.top_k == 8
    assert TrainingConfig().blend.label_free_isolation_forest_weight == 0.1
    new = tail_probability_scorer(TrainingConfig(), ()).fit(X)
    assert ((new.feature_terms(X) > 0).sum(axis=1) <= 8).all()
    assert (new.risk_score(X) <= tail.risk_score(X) + 1e-12).all()


def test_the_providers_facts_count_once_per_invoice_and_still_add_up():
    # Two facts of the provider (tax debt, board changes) and one of the invoice.
    train = _training().assign(tax=[0.0, 0.0, 0.0, 0.0, 1.0], board=[0.0, 0.0, 0.0, 1.0, 2.0])
    X = pd.DataFrame({"billed_ratio": [2.0, 5.0], "spread": [3.0, 1.0], "tax": [1.0, 0.0]})
    X["board"] = [2.0, 3.0]
    every = TailProbabilityScorer(lower_tail=("spread",), shared=("tax", "board")).fit(train)
    capped = TailProbabilityScorer(
        lower_tail=("spread",), shared=("tax", "board"), max_shared_terms=1
    ).fit(train)
    # tax: 1 of 5 at or above 1 -> log 3; board: 1 of 5 at or above 2 -> log 3 (a tie: the
    # earlier column, tax, counts), none at or above 3 -> log 6.
    np.testing.assert_allclose(
        every.feature_terms(X),
        [
            [math.log(3.0), math.log(6 / 4), math.log(3.0), math.log(3.0)],
            [math.log(6.0), math.log(3.0), 0.0, math.log(6.0)],
        ],
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        capped.feature_terms(X),
        [
            [math.log(3.0), math.log(6 / 4), math.log(3.0), 0.0],
            [math.log(6.0), math.log(3.0), 0.0, math.log(6.0)],
        ],
        rtol=0,
        atol=1e-12,
    )
    attribution = explain(capped, X)
    assert attribution.max_additivity_error() < 1e-12
    np.testing.assert_allclose(attribution.output, capped.risk_score(X), rtol=0, atol=1e-12)
    # The config's scorer caps the provider_* columns it is given, at 2 by default.
    scorer = tail_probability_scorer(TrainingConfig(), ("spread",), ("tax", "board"))
    assert (scorer.shared, scorer.max_shared_terms) == (("tax", "board"), 2)
    assert provider_level(["billed_ratio", "provider_age_years", "provider_sanctions_365d"]) == (
        "provider_age_years",
        "provider_sanctions_365d",
    )
    # A scorer pickled before the cap counts every term, as it did.
    old = pickle.loads(pickle.dumps(capped))
    del old.shared_, old.max_shared_terms
    np.testing.assert_array_equal(old.feature_terms(X), every.feature_terms(X))


def test_tail_probability_counts_one_fact_seen_in_several_columns_once():
    """A group of columns showing one fact counts its largest term only; explanations add up."""
    train = pd.DataFrame(
        {
            "manual": [0.0, 0.0, 0.0, 0.0, 1.0],
            "rounds": [0.0, 0.0, 0.0, 1.0, 1.0],
            "billed": [0.0, 0.0, 0.0, 0.0, 1.0],
        }
    )
    X = pd.DataFrame({"manual": [1.0, 0.0], "rounds": [1.0, 1.0], "billed": [1.0, 0.0]})
    every = TailProbabilityScorer().fit(train)
    grouped = TailProbabilityScorer(facts=(("manual", "rounds"),), max_fact_terms=1).fit(train)
    # Terms: -log((beyond + 1) / 6); manual 1.0 -> log 3, rounds 1.0 -> log 2, billed 1.0 -> log 3.
    np.testing.assert_allclose(
        every.feature_terms(X),
        [[math.log(3.0), math.log(2.0), math.log(3.0)], [0.0, math.log(2.0), 0.0]],
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        grouped.feature_terms(X),
        [[math.log(3.0), 0.0, math.log(3.0)], [0.0, math.log(2.0), 0.0]],
        rtol=0,
        atol=1e-12,
    )
    attribution = explain(grouped, X)
    assert attribution.max_additivity_error() < 1e-12
    np.testing.assert_allclose(attribution.output, grouped.risk_score(X), rtol=0, atol=1e-12)
    # The config's scorer counts each group once by default; the home-care group by prefix.
    config = TrainingConfig()
    scorer = tail_probability_scorer(config, (), (), (("manual", "rounds"),))
    assert (scorer.facts, scorer.max_fact_terms) == ((("manual", "rounds"),), 1)
    assert one_fact_groups(
        [
            "manual_registration_share",
            "billed_over_registered_hours",
            "round_start_time_share",
            "manual_share_rise_over_own_history_6m",
            "manual_registration_share_peer_z",
        ]
    ) == (
        (
            "manual_registration_share",
            "round_start_time_share",
            "manual_share_rise_over_own_history_6m",
            "manual_registration_share_peer_z",
        ),
    )
    # A scorer pickled before the groups counts every term, as it did.
    old = pickle.loads(pickle.dumps(grouped))
    del old.fact_columns_, old.max_fact_terms
    np.testing.assert_array_equal(old.feature_terms(X), every.feature_terms(X))
