"""The table mode's report: one self-contained HTML page (no network, prints well)."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from tillit.review.reasons import combine_contributions
from tillit.review.report import contribution_chart
from tillit.review.style import PAGE_CSS

MAX_ROWS_SHOWN = 200
# The pages' one stylesheet (review/style.py), and this page's own two classes.
_STYLE = (
    PAGE_CSS
    + """
.row{border-top:1px solid #ddd;padding:.6em 0;break-inside:avoid}.note{color:#555}
"""
)


def render_table_report(
    risk_list: pd.DataFrame,
    explanations: pd.DataFrame,
    *,
    spec_name: str,
    id_column: str,
    amount_column: str | None,
    selection: str,
    model: dict[str, str],
    evaluation: dict[str, Any],
    counts: dict[str, int],
    weights: dict[str, float],
) -> str:
    """The report: summary, held-out figures of the model, and every flagged row explained."""
    flagged = risk_list[risk_list["flagged"]].sort_values(
        ["why_flagged", "period", "rank"], kind="stable"
    )
    summary = [
        ("table", spec_name),
        ("periods scored", selection),
        ("rows scored", f"{counts['scored']:,}"),
        ("rows quarantined", f"{counts.get('quarantined', 0):,}"),
        (
            "flagged for review",
            f"{counts['flagged']:,} ({counts['random_checks']:,} random checks)",
        ),
        (
            "model",
            f"{model['model_name']} version {model['model_version']} (run {model['run_id']})",
        ),
    ]
    metrics = evaluation.get("metrics", {})
    figure_rows = []
    for ranking in ("combined", "lightgbm", "isolation_forest", "baseline_amount"):
        if f"{ranking}_average_precision" not in metrics:
            continue
        cells = [
            metrics.get(f"{ranking}_{m}", float("nan"))
            for m in (
                "average_precision",
                "precision_at_k",
                "recall_at_k",
                "money_caught_at_k",
                "roc_auc",
            )
        ]
        figure_rows.append(
            "<tr><td>"
            + escape(ranking.replace("_", " "))
            + "</td>"
            + "".join(f"<td>{v:.3f}</td>" for v in cells)
            + "</tr>"
        )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>tillit risk list: {escape(spec_name)} {escape(selection)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Risk list: {escape(spec_name)}, {escape(selection)}</h1>",
        "<p class='note'>A ranking for human review, not a decision: flagged rows are to be "
        "checked against the source data; nothing is stopped on the strength of this list.</p>",
        "<table>"
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in summary)
        + "</table>",
        "<h2>How good the model was on rows it never saw</h2>",
        f"<p>{escape(str(evaluation.get('basis', 'no evaluation')))}; capacity "
        f"{escape(str(evaluation.get('capacity', '')))}.</p>",
    ]
    if figure_rows:
        parts.append(
            "<table><tr><th>ranking</th><th>AP</th><th>precision@k</th><th>recall@k</th>"
            "<th>money caught@k</th><th>ROC-AUC</th></tr>" + "".join(figure_rows) + "</table>"
        )
    parts.append(f"<h2>Flagged rows ({len(flagged):,})</h2>")
    if len(flagged) > MAX_ROWS_SHOWN:
        parts.append(
            f"<p class='note'>The first {MAX_ROWS_SHOWN} are shown; the risk list holds all.</p>"
        )
    combined = pd.DataFrame()
    if not explanations.empty:
        # Each scorer's row scaled to unit mass and weighted as in the blend, as the reasons are.
        per_scorer = {
            str(name): part.pivot(index=id_column, columns="feature", values="contribution")
            for name, part in explanations.groupby("scorer", sort=True)
        }
        combined = combine_contributions(per_scorer, {k: weights.get(k, 0.0) for k in per_scorer})
    for record in flagged.head(MAX_ROWS_SHOWN).to_dict("records"):
        row_id = str(record[id_column])
        amount = (
            f", {amount_column} {record[amount_column]:,.2f}"
            if amount_column and amount_column in record
            else ""
        )
        chart = ""
        if row_id in combined.index:
            values = combined.loc[row_id]
            chart = contribution_chart(values.loc[values.abs().nlargest(8).index])
        standing = (
            f"rank {record['rank']}, risk {record['risk_score']:.3f}"
            if record.get("status", "scored") == "scored"
            else "not scored"  # held at the door: the reason says which rule it broke
        )
        amount = "" if amount.endswith("nan") else amount
        parts.append(
            f"<div class='row'><b>{escape(id_column)} {escape(row_id)}</b> "
            f"(period {escape(str(record['period']) or 'unknown')}, {standing}"
            f"{escape(amount)}; {escape(str(record['why_flagged']))})"
            "<ul>"
            + "".join(f"<li>{escape(r)}</li>" for r in str(record["reasons"]).split("; "))
            + f"</ul>{chart}</div>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
