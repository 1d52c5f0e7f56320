"""The findings vocabulary a stream hands the blend.

The blend lifts a row with a hard finding into the hard-finding band and demotes a
finding type that fires too often or that reviews mostly cleared (modelling/base_rates.py).
What the finding types are is the stream's business: home care has its list
(`features.catalog.FINDING_CODES`), a table has none. The stream passes its codes in;
each code's flag is the feature column `finding_<code>`.
"""

from __future__ import annotations

from collections.abc import Iterable

FINDING_PREFIX = "finding_"


def finding_column(code: str) -> str:
    """The feature column that holds whether a row has the finding `code` (count > 0)."""
    return f"{FINDING_PREFIX}{code}"


def codes_in(columns: Iterable[str]) -> tuple[str, ...]:
    """The finding codes whose columns are among `columns`, in their order.

    For a model pickled before it carried its stream's codes: its finding columns are
    its features, so the codes are read back from them.
    """
    return tuple(c.removeprefix(FINDING_PREFIX) for c in columns if c.startswith(FINDING_PREFIX))
