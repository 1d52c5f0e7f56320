"""Counts in sentences are singular for exactly one and plural otherwise, never "(s)"."""

from __future__ import annotations

import pytest

from tillit.i18n import count, words
from tillit.review.provider_report import _COUNTED_BY, _said


@pytest.mark.parametrize(
    ("lang", "n", "expected"),
    [
        ("en", 1, "1 sanction in the last 365 days"),
        ("en", 2, "2 sanctions in the last 365 days"),
        ("sv", 1, "1 sanktion de senaste 365 dagarna"),
        ("sv", 3, "3 sanktioner de senaste 365 dagarna"),
    ],
)
def test_provider_reason_is_singular_for_one(lang: str, n: int, expected: str) -> None:
    text = words("provider", lang)
    assert _said(text, "sanctioned", {"sanctions": float(n), "days": 365}, lang) == expected


def test_every_counted_provider_sentence_has_both_forms_without_brackets() -> None:
    for lang in ("en", "sv"):
        text = words("provider", lang)
        for name in _COUNTED_BY:
            for key in (name, f"{name}.one"):
                assert "(s)" not in text[key] and "(er)" not in text[key], (lang, key)
                assert "faktura/fakturor" not in text[key], (lang, key)


def test_incomplete_evidence_sentence_counts_invoices() -> None:
    assert count(1, "report.incomplete_text", "en").startswith("1 invoice was scored")
    assert count(2, "report.incomplete_text", "en").startswith("2 invoices were scored")
    assert count(1, "report.incomplete_text", "sv").startswith("1 faktura bedömdes")
    assert count(4, "report.incomplete_text", "sv").startswith("4 fakturor bedömdes")
