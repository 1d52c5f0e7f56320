"""The promotion rule and the choice of the comparison month, on exact numbers."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from tillit.features.catalog import FEATURES_REDEFINED
from tillit.modelling.promotion import (
    SAME_DATA,
    ModelFacts,
    compare_held_out_runs,
    comparison_month,
    decide,
    definitions_note,
    definitions_refusal,
    missing_month_message,
)
from tillit.review.retrain_summary import importance_moves


def facts(version: str, last: str, labelled: int = 100, **kw: object) -> ModelFacts:
    values: dict[str, object] = {
        "eval_period": last,
        "evaluation_basis": "truth",
        "data_fingerprint": "f1",
        "held_out_value": 0.8,
        "labels_reviewed_until": None,
    }
    values.update(kw)
    periods = tuple(f"2025-{m:02d}" for m in range(1, int(last[-2:]) + 1))
    return ModelFacts(version=version, trained_periods=periods, labelled=labelled, **values)  # type: ignore[arg-type]


def test_better_by_more_than_the_tolerance_promotes_whatever_it_learned_from() -> None:
    assert decide(0.80, 0.82, 0.01, 100, 90) == (
        True,
        "better by 0.0200, more than the tolerance 0.01",
    )


def test_worse_by_more_than_the_tolerance_refuses_whatever_it_learned_from() -> None:
    assert decide(0.80, 0.7850, 0.01, 100, 500) == (
        False,
        "worse by 0.0150, more than the tolerance 0.01",
    )


def test_a_tie_promotes_only_a_challenger_trained_on_more_decisions() -> None:
    promoted, why = decide(0.8569, 0.8569, 0.01, 82, 106)
    assert promoted
    assert why == (
        "within the tolerance 0.01 (+0.0000) and trained on more decisions "
        "(106 decisions against the champion's 82)"
    )
    assert decide(0.8569, 0.8569, 0.01, 82, 82)[0] is False
    # Slightly worse but within the tolerance, with more decisions: promoted.
    assert decide(0.80, 0.7950, 0.01, 82, 83)[0] is True
    # Unknown counts (an old run) never count as more.
    assert decide(0.80, 0.80, 0.01, None, 83)[0] is False


def test_the_month_is_the_latest_reviewed_one_after_both_models_training() -> None:
    champion, challenger = facts("1", "2025-05"), facts("2", "2025-06")
    reviewed = {"2025-03", "2025-05", "2025-06", "2025-07", "2025-08"}
    assert comparison_month(champion, challenger, reviewed) == "2025-08"
    assert comparison_month(champion, challenger, {"2025-05", "2025-06"}) is None
    message = missing_month_message(champion, challenger, {"2025-05", "2025-06"})
    assert "challenger (version 2) was trained on months up to 2025-06" in message
    assert "champion (version 1) up to 2025-05" in message
    assert "audit outcomes reach 2025-06" in message
    assert "feed back the decisions on a month after 2025-06" in message


def test_held_out_runs_compare_only_on_the_same_data_month_and_basis() -> None:
    champion = facts("1", "2025-05", labelled=82, held_out_value=0.8569)
    challenger = facts("2", "2025-05", labelled=82, held_out_value=0.8700)
    same = compare_held_out_runs(champion, challenger, "average_precision", 0.01)
    assert same is not None and same.how == SAME_DATA and same.promote
    assert same.tags()["promotion_challenger_value"] == "0.870000"
    assert same.tags()["promotion_period"] == "2025-05"
    other_data = facts("2", "2025-05", data_fingerprint="f2", held_out_value=0.9)
    assert compare_held_out_runs(champion, other_data, "average_precision", 0.01) is None
    other_month = facts("2", "2025-06", held_out_value=0.9)
    assert compare_held_out_runs(champion, other_month, "average_precision", 0.01) is None


def test_importance_moves_rank_features_by_the_size_of_the_change() -> None:
    columns = ["lightgbm_gain_share", "isolation_forest_mean_abs_contribution_share"]
    before = pd.DataFrame([[0.5, 0.3], [0.5, 0.7]], index=["a", "b"], columns=columns)
    after = pd.DataFrame(
        [[0.2, 0.2], [0.4, 0.8], [0.4, 0.0]], index=["a", "b", "c"], columns=columns
    )
    moves = importance_moves(before, after, top=2)
    # a: 0.4 -> 0.2 (-0.2); b: 0.6 -> 0.6 (0); c: 0 -> 0.2 (+0.2): a and c tie, by name.
    assert moves["feature"].tolist() == ["a", "c"]
    assert moves["change"].round(12).tolist() == [-0.2, 0.2]


def test_a_challenger_of_other_feature_definitions_is_refused_naming_what_changed() -> None:
    assert definitions_refusal("4", 2, now=2) is None
    older = definitions_refusal("4", 1, now=2)
    assert older == (
        "the challenger (version 4) was trained on feature definitions v1, older than the v2 "
        f"this tillit computes (changed since: {', '.join(sorted(FEATURES_REDEFINED[2]))}): as "
        "champion it would read columns whose meaning is not what it learned; retrain it with "
        "this tillit (`tillit train`), or promote it on purpose with --other-definitions "
        "--reason WHY"
    )
    newer = definitions_refusal("4", 3, now=2)
    assert newer is not None and "v3, newer than the v2" in newer and "changed since" not in newer


def test_a_comparison_across_feature_definitions_says_so_in_its_record_and_tags() -> None:
    champion = facts("1", "2025-05", labelled=82, held_out_value=0.80)
    challenger = facts("2", "2025-05", labelled=82, held_out_value=0.90)
    plain = compare_held_out_runs(champion, challenger, "average_precision", 0.01)
    assert plain is not None and "note" not in plain.record()
    assert "promotion_note" not in plain.tags()
    assert definitions_note(2, 2, now=2) == ""
    note = definitions_note(1, 2, now=2)
    assert note == (
        "feature definitions differ: the champion was trained on v1, the challenger on v2; "
        "both were scored on this tillit's v2 features, so a model trained on other "
        "definitions is judged on columns whose meaning changed"
    )
    noted = replace(plain, note=note)
    assert noted.record()["note"] == note and noted.tags()["promotion_note"] == note
