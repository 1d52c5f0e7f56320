"""The report and the provider page of one small simulated month, read as an auditor reads them.

One story: every link from the provider page lands in the report, both pages show the
same counts per provider, and every provider the report opens as a case is in the
provider page's top ten. In Swedish: no code or column name and no English number in
the text a reader sees.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import ok, tillit_here
from tests.e2e.test_providers_cli import LAST, world  # noqa: F401 (the shared small world)
from tillit.data.contract import TABLES
from tillit.features.catalog import FINDING_CODES, feature_columns
from tillit.i18n import words
from tillit.jobs.providers import PROVIDER_RISK_COLUMNS
from tillit.review.score import RISK_LIST_COLUMNS


@pytest.fixture(scope="session")  # built once even when xdist interleaves modules
def pages(world: dict[str, Path]) -> dict[str, dict[str, Path]]:  # noqa: F811
    """The world's month scored and ranked in English and in Swedish.

    A small world has few flagged invoices per provider: a provider with 3 of them is a
    case here, so the report opens with cases for the provider page to agree with.
    """
    root = world["root"]
    config = root / "pages.yaml"
    config.write_text("scoring:\n  case_min_flagged: 3\n  case_min_share_of_flagged: 0.0\n")
    pages = {}
    for lang in ("en", "sv"):
        runs = root / f"pages-{lang}"
        common = ("--data", world["data"], "--store", world["store"], "--lang", lang)
        common += ("--config", config, "--period", LAST)
        # In this process: the pages are the subject here, not the command's start.
        ok(tillit_here("score", "--out", runs / f"score-{LAST}", *common))
        ok(tillit_here("providers", "--out", runs / f"providers-{LAST}", *common))
        pages[lang] = {
            "report": runs / f"score-{LAST}" / "report.html",
            "providers": runs / f"providers-{LAST}" / "providers.html",
            "manifest": runs / f"score-{LAST}" / "manifest.json",
            "provider_risk": runs / f"providers-{LAST}" / "provider_risk.parquet",
        }
    return pages


def _ids(page: str) -> set[str]:
    return set(re.findall(r"""\sid=['"]([^'"]+)['"]""", page))


def _numbers(cells: list[str]) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def _report_counts(report: str) -> dict[str, list[str]]:
    """Per provider, the appendix row's flagged, with-a-finding and in-dispute cells."""
    appendix = report[report.index("id='appendix'") :]
    rows = re.findall(r"<tr[^>]*><td>([^<]+)</td>((?:<td class='num'>[^<]*</td>){5})", appendix)
    return {
        p: _numbers(re.findall(r"<td class='num'>([^<]*)</td>", cells))[2:] for p, cells in rows
    }


def _provider_counts(page: str) -> dict[str, list[str]]:
    """Per provider row of the page: its flagged, with-a-finding and in-dispute cells."""
    out = {}
    for provider, row in re.findall(r"<tr id='provider-([^']+)'>(.*?)</tr>", page, re.S):
        cells = _numbers(re.findall(r"<td class='num'>([^<]*)</td>", row))
        out[provider] = cells[4:7]  # rank, risk, invoices, invoiced, then the report's counts
    return out


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_the_two_pages_tell_one_story(pages, lang):
    paths = pages[lang]
    report = paths["report"].read_text("utf-8")
    providers = paths["providers"].read_text("utf-8")
    # Every link from the provider page into the report lands on an anchor there.
    targets = re.findall(r"""href=['"]\.\./score-[\d-]+/report\.html#([^'"]+)['"]""", providers)
    assert targets, "the provider page links into the report"
    anchors = _ids(report)
    assert not [t for t in targets if t not in anchors]
    # So does every link inside the report.
    assert not [t for t in re.findall(r"href='#([^']+)'", report) if t not in anchors]
    # The same counts per provider on both pages (flagged, with a finding, in dispute).
    in_report, on_page = _report_counts(report), _provider_counts(providers)
    assert set(on_page) >= set(in_report) and in_report
    assert {p: on_page[p] for p in in_report} == in_report
    flagged = sum(int(c[0].replace(",", "").replace("\u00a0", "")) for c in in_report.values())
    manifest = json.loads(paths["manifest"].read_text("utf-8"))
    assert flagged == manifest["summary"]["flagged"] - manifest["summary"]["invoices_quarantined"]
    # Every provider the report opens as a case is in the provider page's top ten.
    cases = [c["provider_id"] for c in manifest["triage"]["cases"]]
    ranks = pd.read_parquet(paths["provider_risk"]).set_index("provider_id")["rank"]
    assert cases and all(ranks[p] <= max(10, len(cases)) for p in cases), ranks[cases]


def _visible(page: str) -> str:
    """The text a reader sees: no style sheet, no tags or attributes, entities decoded."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    page = re.sub(r"<title>.*?</title>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _codes() -> set[str]:
    """Vocabulary codes and column names: what a Swedish reader must never be shown."""
    names = {
        *RISK_LIST_COLUMNS,
        *PROVIDER_RISK_COLUMNS,
        *feature_columns(),
        *FINDING_CODES,
        *words("service", "en"),
        *words("event", "en"),
        *(f"{table}.{column}" for table, spec in TABLES.items() for column in spec.columns),
        *TABLES,
    }
    # Codes look like codes (`personal_care`, `clients.deceased_on`); plain words are words.
    return {n for n in names if "_" in n or "." in n}


def test_a_swedish_run_shows_no_code_and_no_english_number(pages):
    codes = _codes()
    assert "personal_care" in codes and "clients.deceased_on" in codes
    for name in ("report", "providers"):
        text = _visible(pages["sv"][name].read_text("utf-8"))
        # File names are named as files (risk_list.csv); codes inside them are not codes.
        text = re.sub(r"\b[\w.]+\.(csv|parquet|html)\b", " ", text)
        shown = sorted(c for c in codes if re.search(rf"(?<![\w.]){re.escape(c)}(?![\w])", text))
        assert not shown, (name, shown)
        # English numbers: a decimal point, or thousands by comma before an amount or a group.
        english = re.findall(r"\d\.\d|\d,\d{3}(?:\s?(?:kr|SEK)|,\d{3})", text)
        assert not english, (name, english[:5])
        assert "\u00a0kr" in text
    assert "kr" not in _visible(pages["en"]["report"].read_text("utf-8")).split()
