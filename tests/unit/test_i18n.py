"""tillit.i18n: every user-facing string in both languages, and a Swedish run that stays Swedish."""

from __future__ import annotations

import html
import re
import shutil
import string
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import ok, tillit_here
from tillit import i18n
from tillit.features.catalog import FINDING_CODES, feature_catalog
from tillit.i18n import NAMESPACES, check_lang, keys, listing, placeholders, render_parts, text


def test_every_key_has_both_languages_with_the_same_placeholders() -> None:
    assert len(keys()) > 250
    for namespace, tables in NAMESPACES.items():
        assert set(tables) == {"sv", "en"}, namespace
        assert set(tables["sv"]) == set(tables["en"]), namespace
        for name, english in tables["en"].items():
            swedish = tables["sv"][name]
            assert placeholders(english) == placeholders(swedish), f"{namespace}.{name}"
            assert english.strip() and swedish.strip(), f"{namespace}.{name}"


def test_text_fills_fields_and_names_what_is_wrong() -> None:
    assert (
        text("reason.nothing_stands_out", "sv") == "inget sticker ut jämfört med liknande fakturor"
    )
    assert text("drift.warn_score", "en", psi=0.3141) == (
        "the risk score distribution moved: PSI 0.31"
    )
    with pytest.raises(ValueError, match="language must be en or sv, not 'de'"):
        text("reason.nothing_stands_out", "de")
    with pytest.raises(ValueError, match="not 'SV'"):
        check_lang("SV")
    with pytest.raises(KeyError, match=r"unknown text key 'nosuch\.title'"):
        text("nosuch.title", "en")
    with pytest.raises(KeyError, match=r"no text 'report\.nosuch' in 'sv'"):
        text("report.nosuch", "sv")
    with pytest.raises(KeyError, match="needs the field 'psi'"):
        text("drift.warn_score", "en")
    assert check_lang("sv") == "sv"


def test_evidence_facts_are_worded_in_either_language() -> None:
    parts = [
        [
            "evidence.visits_after_death",
            {
                # Facts written before the words lost the client id still carry it.
                "client": "C1",
                "period": "2025-03",
                "provider": "P1",
                "died": "2025-02-27",
                "n": 5,
                "visits": {"items": ["V1", "V2"], "total": 5},
            },
        ]
    ]
    assert render_parts(parts, "en") == (
        "the client died on 2025-02-27 (clients.deceased_on); 5 visit(s) of this invoice start "
        "after that day: V1, V2 and 3 more"
    )
    assert render_parts(parts, "sv") == (
        "brukaren avled 2025-02-27 (enligt brukarregistret); 5 besök på fakturan börjar "
        "efter den dagen: V1, V2 och 3 till"
    )
    assert listing(["a"], 1, "sv") == "a"


def test_feature_descriptions_come_from_the_tables_and_follow_the_config() -> None:
    from tillit.config import FeatureConfig

    twelve = feature_catalog(FeatureConfig(history_windows_months=(3, 12)))
    assert "de senaste 12 månaderna" in twelve["billed_over_granted_hours_12m"]["sv"]
    assert "Months out of the last 12 in" in twelve["months_billed_exactly_at_grant_12m"]["en"]
    assert FINDING_CODES["duplicate_invoice"] == text("finding.duplicate_invoice", "en") + "."
    # No module keeps a sv/en table of its own any more.
    src = Path(i18n.__file__).parents[1]
    for path in src.rglob("*.py"):
        if "i18n" in path.parts or "tables" in path.parts:
            continue
        assert not re.search(r'^\s*"sv": \{', path.read_text("utf-8"), re.M), path


def _phrases(lang: str, other: str, namespaces: tuple[str, ...]) -> set[str]:
    """The literal pieces of `lang`'s templates that appear in no template of `other`.

    A piece counts when it holds two or more words of 4+ letters: long enough to be
    the language's own wording, not a code, a unit or punctuation.
    """
    theirs = " ".join(t for ns in NAMESPACES.values() for t in ns[other].values())
    found = set()
    for namespace in namespaces:
        for template in NAMESPACES[namespace][lang].values():
            for literal, *_ in string.Formatter().parse(template):
                for piece in re.split(r"[;:()'<>]", literal or ""):
                    piece = piece.strip(" ,.")
                    if len(re.findall(r"[^\W\d_]{4,}", piece)) >= 2 and piece not in theirs:
                        found.add(piece)
    return found


SCORE_NAMESPACES = ("report", "case", "pattern", "drift", "reason", "finding", "evidence", "rule")
# Rows of the scored month broken in the export: (column, value written).
BROKEN = (
    ("billed_hours", -3.0),
    ("client_id", None),
    ("period", "2025/06"),
    ("provider_id", "P9999"),
)


@pytest.fixture(scope="module")
def scored(
    trained_export: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The session's trained model, and a month billed at 1.6 times the hours scored in sv and in en."""
    root = tmp_path_factory.mktemp("i18n")
    data, store = trained_export["data"], trained_export["store"]
    shifted = root / "shifted"
    shutil.copytree(data, shifted)
    invoices = pd.read_parquet(shifted / "invoices.parquet")
    month = invoices["period"] == "2025-06"
    for column in ("billed_hours", "amount_sek"):
        invoices.loc[month, column] = (invoices.loc[month, column] * 1.6).round(2)
    # A few of the month's rows broken, so that the door holds them with a reason.
    for row, (column, value) in zip(invoices.index[month], BROKEN, strict=False):
        invoices.loc[row, column] = value
    invoices.to_parquet(shifted / "invoices.parquet", index=False)
    outs = {}
    for lang in ("sv", "en"):
        outs[lang] = root / f"score-{lang}"
        args = ("--period", "2025-06", "--out", outs[lang], "--store", store, "--lang", lang)
        ok(tillit_here("score", "--data", shifted, *args))  # in this process: the words are tested
    return outs


def _said(out: Path) -> tuple[str, str]:
    """The risk list's reasons and findings, and the report page."""
    # The Parquet keeps the codes in every language (the Swedish CSV names columns in Swedish).
    risk = pd.read_parquet(out / "risk_list.parquet", columns=["reasons", "findings"]).fillna("")
    return "\n".join(risk["reasons"]) + "\n".join(risk["findings"]), (
        out / "report.html"
    ).read_text("utf-8")


def test_a_swedish_run_says_nothing_in_english(scored: dict[str, Path]) -> None:
    lists, page = _said(scored["sv"])
    english = _phrases("en", "sv", SCORE_NAMESPACES)
    assert {"of invoices against", "far above comparable invoices"} & english
    assert not [p for p in english if p in lists or p in page]
    # What it says instead, and the drift warnings are there to be read.
    assert "typiskt för" in lists and "riskpoängens fördelning har flyttat sig" in page
    assert any(text(f"finding.{code}", "sv") in lists for code in FINDING_CODES)
    assert "Skiljer sig månaden från träningsmånaderna?" in page


def test_an_english_run_says_nothing_in_swedish(scored: dict[str, Path]) -> None:
    lists, page = _said(scored["en"])
    swedish = _phrases("sv", "en", SCORE_NAMESPACES)
    assert "långt över jämförbara fakturor" in swedish
    assert not [p for p in swedish if p in lists or p in page]
    assert "typical for" in lists and "the risk score distribution moved" in page


def test_held_invoices_give_their_reasons_in_the_run_s_language(scored: dict[str, Path]) -> None:
    said = {}
    for lang, out in scored.items():
        risk = pd.read_parquet(out / "risk_list.parquet", columns=["status", "reasons"]).fillna("")
        held = risk[risk["status"] == "quarantined"]
        assert len(held) == len(BROKEN), held
        said[lang] = "\n".join(sorted(held["reasons"]))
        page = (out / "report.html").read_text("utf-8")
        assert all(html.escape(reason) in page for reason in held["reasons"])
    assert said["en"].splitlines() == [
        "cannot be scored: billed_hours >= 0",
        "cannot be scored: client_id must not be empty",
        r"cannot be scored: period must match ^\d{4}-(0[1-9]|1[0-2])$ (period read as 2025-06)",
        "cannot be scored: provider_id must refer to a valid row of providers",
    ]
    assert said["sv"].splitlines() == [
        "kan inte bedömas: billed_hours måste vara minst 0",
        "kan inte bedömas: client_id får inte vara tom",
        r"kan inte bedömas: period måste följa mönstret ^\d{4}-(0[1-9]|1[0-2])$ "
        "(perioden lästes som 2025-06)",
        "kan inte bedömas: provider_id måste hänvisa till en giltig rad i tabellen providers",
    ]
    # The quarantine file keeps the English rule: it is a data record.
    rules = set(pd.read_parquet(scored["sv"] / "quarantine.parquet")["rule"])
    assert {"billed_hours >= 0", "client_id must not be empty"} <= rules


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("en", "staff overlaps (8), duplicate invoices (1)"), ("sv", "dubbla fakturor (1)")],
)
def test_case_lines_name_finding_types_in_words_not_codes(lang: str, expected: str) -> None:
    from tillit.review.casereport import opening_sections

    summary = {
        "cases": [
            {
                "provider_id": "P0062",
                "flagged_invoices": 39,
                "amount_sek": 100000.0,
                "share_of_flagged": 0.04,
                "findings": {"staff_double_booked": 8, "duplicate_invoice": 1},
            }
        ]
    }
    html = "".join(opening_sections(summary, lang))
    assert expected in html
    assert "staff_double_booked" not in html
