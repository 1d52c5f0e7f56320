"""The table mode's report: one self-contained HTML page (no network, prints well)."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from tillit.core.html import page
from tillit.i18n import number, text, words
from tillit.review.reasons import combine_contributions
from tillit.review.report import contribution_chart

MAX_ROWS_SHOWN = 200


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
    lang: str = "en",
) -> str:
    """The report: summary, held-out figures of the model, and every flagged row explained.

    Its words are in `lang` (tillit.i18n, namespace `table`); the spec's column names and
    the training's own words (the basis of the evaluation) stay as they were written.
    """

    def t(key: str, **fields: object) -> str:
        return text(f"table.{key}", lang, **fields)

    flagged = risk_list[risk_list["flagged"]].sort_values(
        ["why_flagged", "period", "rank"], kind="stable"
    )
    summary = [
        (t("table"), spec_name),
        (t("periods_scored"), selection),
        (t("rows_scored"), number(counts["scored"], lang)),
        (t("rows_quarantined"), number(counts.get("quarantined", 0), lang)),
        (
            t("flagged_for_review"),
            t(
                "flagged_count",
                flagged=number(counts["flagged"], lang),
                random=number(counts["random_checks"], lang),
            ),
        ),
        (
            t("model"),
            t(
                "model_version",
                name=model["model_name"],
                version=model["model_version"],
                run=model["run_id"],
            ),
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
            + escape(t(f"ranking.{ranking}"))
            + "</td>"
            + "".join(f"<td>{escape(number(v, lang, 3))}</td>" for v in cells)
            + "</tr>"
        )
    parts = [
        f"<h1>{escape(t('title', spec=spec_name, selection=selection))}</h1>",
        f"<p class='note'>{escape(t('note'))}</p>",
        "<table>"
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in summary)
        + "</table>",
        f"<h2>{escape(t('evaluation'))}</h2>",
        "<p>"
        + escape(
            t(
                "evaluation_basis",
                basis=str(evaluation.get("basis", t("no_evaluation"))),
                capacity=str(evaluation.get("capacity", "")),
            )
        )
        + "</p>",
    ]
    if figure_rows:
        headers = (t("ranking"), "AP", "precision@k", "recall@k", t("money_caught_at_k"), "ROC-AUC")
        parts.append(
            "<table><tr>"
            + "".join(f"<th>{escape(h)}</th>" for h in headers)
            + "</tr>"
            + "".join(figure_rows)
            + "</table>"
        )
    parts.append(f"<h2>{escape(t('flagged_rows', n=number(len(flagged), lang)))}</h2>")
    if len(flagged) > MAX_ROWS_SHOWN:
        parts.append(f"<p class='note'>{escape(t('first_shown', n=MAX_ROWS_SHOWN))}</p>")
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
        amount = ""
        if amount_column and amount_column in record and pd.notna(record[amount_column]):
            amount = f", {amount_column} {number(record[amount_column], lang, 2)}"
        chart = ""
        if row_id in combined.index:
            values = combined.loc[row_id]
            chart = contribution_chart(values.loc[values.abs().nlargest(8).index])
        standing = (
            t("standing", rank=record["rank"], risk=record["risk_score"])
            if record.get("status", "scored") == "scored"
            else t("not_scored")  # held at the door: the reason says which rule it broke
        )
        why = words("tag", lang).get(str(record["why_flagged"]), str(record["why_flagged"]))
        head = t(
            "row",
            period=str(record["period"]) or t("unknown"),
            standing=standing,
            amount=amount,
            why=why,
        )
        parts.append(
            f"<div class='row'><b>{escape(id_column)} {escape(row_id)}</b> ({escape(head)})"
            "<ul>"
            + "".join(f"<li>{escape(r)}</li>" for r in str(record["reasons"]).split("; "))
            + f"</ul>{chart}</div>"
        )
    return page(t("page_title", spec=spec_name, selection=selection), parts, lang)
