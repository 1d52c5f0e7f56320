"""Periods as a user writes them: the one parser, checked before any data is read.

A home-care billing month is `YYYY-MM` (the pattern lives in `vocabulary`); a table
spec's period is a day, an ISO week or a month, and table mode also takes a range
`FROM..TO`. A bad period is a bad request (exit 2) whose message names the format,
so `--period 12/2025` or `2025-13` fails at once instead of after reading the export.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from tillit.data.vocabulary import PERIOD_PATTERN
from tillit.errors import NothingToScoreError, TillitError

if TYPE_CHECKING:
    from tillit.config import InputConfig

# kind -> (how it is written, pattern, an example)
PERIOD_FORMATS: dict[str, tuple[str, str, str]] = {
    "month": ("YYYY-MM", PERIOD_PATTERN.strip("^$"), "2025-12"),
    "week": ("YYYY-Www (ISO week)", r"\d{4}-W(0[1-9]|[1-4]\d|5[0-3])", "2026-W09"),
    "day": ("YYYY-MM-DD", r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", "2026-03-01"),
}


def _exists(text: str, kind: str) -> bool:
    """Whether a well-formed day or week is in the calendar (no 2025-02-30, no 2026-W53)."""
    try:
        if kind == "day":
            dt.date.fromisoformat(text)
        elif kind == "week":
            dt.date.fromisocalendar(int(text[:4]), int(text[6:]), 1)
    except ValueError:
        return False
    return True


def is_period(text: object, kind: str = "month") -> TypeGuard[str]:
    """Whether `text` is one period of `kind` as tillit writes it."""
    pattern = PERIOD_FORMATS[kind][1]
    return isinstance(text, str) and bool(re.fullmatch(pattern, text)) and _exists(text, kind)


def parse_period(text: str, kind: str = "month", flag: str = "--period") -> str:
    """`text` when it is one period of `kind`.

    Raises:
        TillitError: naming the format and an example (exit 2).
    """
    if not is_period(text, kind):
        written, _, example = PERIOD_FORMATS[kind]
        raise TillitError(f"{flag} {text!r} is not a {kind}: write it as {written}, e.g. {example}")
    return text


def parse_range(text: str, kind: str, flag: str = "--period") -> tuple[str, str]:
    """`P` or `FROM..TO` (both included) of one kind, as (first, last).

    Raises:
        TillitError: a part is not a period of `kind`, or the range runs backwards.
    """
    first, _, last = text.partition("..")
    last = last or first
    if not (is_period(first, kind) and is_period(last, kind)):
        written, _, example = PERIOD_FORMATS[kind]
        raise TillitError(
            f"{flag} {text!r}: expected one {kind} like {example} or FROM..TO, "
            f"each written {written}"
        )
    if last < first:
        raise TillitError(f"{flag} {text!r}: the end comes before the start")
    return first, last


def months_present(periods: Iterable[object]) -> str:
    """The months an export holds, in words: `2025-01 to 2025-06 (6 months)` or a short list."""
    months = sorted({p for p in periods if is_period(p, "month")})
    if not months:
        return "no month written YYYY-MM"
    if len(months) <= 3:
        return ", ".join(months)
    first, last = months[0], months[-1]
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1
    gaps = "" if span == len(months) else f", with gaps: {len(months)} of {span}"
    return f"{first} to {last} ({len(months)} months{gaps})"


def nothing_to_score(period: str, data_dir: Path, placed: Iterable[object]) -> NothingToScoreError:
    """The error of a month the export has no invoice of, naming the months it has (exit 4)."""
    return NothingToScoreError(
        f"period {period} has no invoices in {data_dir}: nothing to score; "
        f"the export's invoices are of {months_present(placed)}"
    )


def refuse_empty_month(data_dir: Path, period: str, settings: InputConfig | None = None) -> None:
    """Stop before any work when the export has no invoice of the month (exit 4).

    Reads only the invoices' period column (pandas and pyarrow, not the models), so a
    month that is not in the export is said in a moment. A table that cannot be read
    this way is left to the full read, which says what is wrong with it.

    Raises:
        NothingToScoreError: naming the months the export holds.
    """
    import pandas as pd

    from tillit.data.io import read_table_column
    from tillit.data.lineage import placed_periods

    written = read_table_column(data_dir, "invoices", "period", settings)
    if written is None or written.empty:
        return
    placed = placed_periods(pd.DataFrame({"period": written}))
    # Unplaceable periods count for every month, as scoring counts them.
    if not ((placed == period) | placed.isna()).any():
        raise nothing_to_score(period, data_dir, placed)
