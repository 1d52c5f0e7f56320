"""The risk list every stream writes: one schema, parameterised by the column that names a row.

A risk list accounts for every row of the period: scored rows with a risk in [0, 1], a
rank from 1 and a unique id; rows held at the door (`quarantined`), listed and flagged
but not scored. Why a row is flagged is said in one vocabulary, shared by every stream
(a stream uses the words that apply to it). A stream adds its own columns and checks
(home care: money in dispute, evidence from quarantined rows) as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import pandera.pandas as pa

WHY_CAPACITY = "capacity"
WHY_FINDING = "hard finding"
WHY_RANDOM = "random check"
WHY_LIST_CHECK = "list check"
WHY_QUARANTINE = "quarantined"  # a row the door held: listed, flagged, not scored
# A row with a finding the per-provider bound kept off the list: said, not flagged.
WHY_BEYOND_BOUND = "finding beyond the bound (not flagged)"
WHY_FLAGGED = (WHY_CAPACITY, WHY_FINDING, WHY_RANDOM, WHY_LIST_CHECK, WHY_QUARANTINE)
WHY_VOCABULARY = ("", *WHY_FLAGGED, WHY_BEYOND_BOUND)
STATUSES = ("scored", "quarantined")


def _scored(df: pd.DataFrame) -> pd.Series:
    return df["status"] == "scored"


def _said_in_the_vocabulary(why: str) -> bool:
    """One reason, or several joined by "; " (a row flagged by capacity with a hard finding)."""
    return all(part.strip() in WHY_VOCABULARY for part in str(why).split(";"))


def _flagged_have_reasons(df: pd.DataFrame) -> pd.Series:
    return ~df["flagged"] | (df["reasons"].fillna("").astype("str") != "")


def risk_list_schema(
    id_column: str,
    extra_columns: Mapping[str, pa.Column] | None = None,
    extra_checks: Sequence[pa.Check] = (),
) -> pa.DataFrameSchema:
    """The risk list on the way out, its rows named by `id_column`.

    Every stream's list: a status, a risk in [0, 1] and a rank from 1 (both missing only
    on rows that were not scored), a flag, why it is flagged in the shared vocabulary (one
    word or several joined by "; "),
    reasons on every flagged row, unique ids among scored rows, and every quarantined
    row flagged as quarantined (its id may repeat or be empty: that is why it was held).
    """
    return pa.DataFrameSchema(
        {
            id_column: pa.Column(str),
            "period": pa.Column(str),
            "status": pa.Column(str, pa.Check.isin(list(STATUSES))),
            "risk_score": pa.Column(float, [pa.Check.ge(0), pa.Check.le(1)], nullable=True),
            "rank": pa.Column("Int64", pa.Check.ge(1), nullable=True),
            "flagged": pa.Column(bool),
            "why_flagged": pa.Column(
                str,
                pa.Check(_said_in_the_vocabulary, element_wise=True, name="why_in_the_vocabulary"),
            ),
            "reasons": pa.Column(str, nullable=True),
            **(extra_columns or {}),
        },
        checks=[
            pa.Check(_flagged_have_reasons, name="every_flagged_row_has_reasons"),
            pa.Check(
                lambda df: ~_scored(df) | (df["risk_score"].notna() & df["rank"].notna()),
                name="scored_rows_have_a_risk_and_a_rank",
            ),
            pa.Check(
                lambda df: (
                    _scored(df)
                    | (
                        df["flagged"]
                        & (
                            df.get("why_flagged", pd.Series(WHY_QUARANTINE, df.index))
                            == WHY_QUARANTINE
                        )
                    )
                ),
                name="quarantined_rows_are_flagged",
            ),
            pa.Check(
                lambda df: ~df.loc[_scored(df), id_column].duplicated().any(),
                name="scored_ids_are_unique",
            ),
            *extra_checks,
        ],
        strict=False,
    )


def spreadsheet(
    risk_list: pd.DataFrame, language: str, names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The risk list as a spreadsheet in `language` shows it: headers and coded values in words.

    English keeps the codes (the CSV has always had them). Otherwise the status, why a
    row is flagged and yes/no columns are said in `language`, and the columns are named
    in it (tillit.i18n `column`, then `names`, a stream's own headers; a column neither
    knows, such as a table's own, keeps its name).
    """
    from tillit.i18n import words

    if language == "en":
        return risk_list
    known = {**words("column", language), **(names or {})}
    tags = words("tag", language)
    out = risk_list.copy()
    out["status"] = out["status"].map(lambda v: known.get(f"status.{v}", v))
    out["why_flagged"] = out["why_flagged"].map(
        lambda v: "; ".join(tags.get(p.strip(), p.strip()) for p in str(v).split(";") if p.strip())
    )
    for column in ("flagged", "evidence_incomplete"):
        if column in out:
            out[column] = out[column].map(
                lambda v: "" if pd.isna(v) else known["yes"] if bool(v) else known["no"]
            )
    return out.rename(columns={c: known.get(c, c) for c in out.columns})
