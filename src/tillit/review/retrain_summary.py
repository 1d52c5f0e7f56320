"""The monthly retraining summary: what the loop decided and what changed, as Markdown.

Pure functions: the job (jobs/retrain.py) gathers the figures, these put them in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

IMPORTANCE_COLUMNS = ("lightgbm_gain_share", "isolation_forest_mean_abs_contribution_share")


def importance_moves(before: pd.DataFrame, after: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """The features whose importance moved most between two models.

    A feature's importance is the mean of its LightGBM gain share and its
    IsolationForest contribution share (both sum to 1 over the features), so it
    reads as "share of what the two scorers rely on". A feature one model lacks
    counts 0 there.

    Returns:
        feature, before, after, change (after - before), sorted by |change|, then name.
    """

    def share(frame: pd.DataFrame) -> pd.Series:
        return frame.loc[:, list(IMPORTANCE_COLUMNS)].mean(axis=1)

    old, new = share(before), share(after)
    names = sorted(set(old.index) | set(new.index))
    old, new = old.reindex(names, fill_value=0.0), new.reindex(names, fill_value=0.0)
    moves = pd.DataFrame(
        {"feature": names, "before": old.to_numpy(), "after": new.to_numpy()}
    ).assign(change=lambda f: f["after"] - f["before"])
    order = moves.assign(size=moves["change"].abs()).sort_values(
        ["size", "feature"], ascending=[False, True], kind="stable"
    )
    return order.drop(columns="size").head(top).reset_index(drop=True)


@dataclass(frozen=True)
class RetrainFacts:
    """Everything the summary states, gathered by the job."""

    date: str
    data: str
    data_fingerprint: str
    judged: str  # the decision on the waiting challenger, in words ("" when none)
    judged_rows: list[tuple[str, str, str]]  # (what, champion, challenger) figures
    new_version: str
    new_trained_periods: str
    new_eval_period: str
    new_eval_basis: str
    new_metrics: dict[str, float]
    champion_version: str | None
    champion_metrics: dict[str, float]
    labelled_new: int
    labelled_champion: int | None
    decisions_since_champion: int
    champion_labels_until: str | None
    moves: pd.DataFrame
    next_step: str


def render_summary(facts: RetrainFacts) -> str:
    """The summary as Markdown: decision first, then the figures, then what moved."""
    lines = [
        f"# Retraining {facts.date}",
        "",
        f"Data: `{facts.data}` (fingerprint {facts.data_fingerprint}).",
        "",
        "## Promotion",
        "",
        facts.judged or "No challenger was waiting to be judged.",
        "",
    ]
    if facts.judged_rows:
        lines += ["| | champion | challenger |", "| --- | --- | --- |"]
        lines += [f"| {what} | {a} | {b} |" for what, a, b in facts.judged_rows]
        lines.append("")
    lines += [
        "## The new challenger",
        "",
        f"Version {facts.new_version}, trained on {facts.new_trained_periods}; "
        f"held-out month {facts.new_eval_period} ({facts.new_eval_basis}).",
        "",
        f"Decisions learned from: {facts.labelled_new}"
        + (
            f" (the champion, version {facts.champion_version}: {facts.labelled_champion}); "
            f"{facts.decisions_since_champion} decisions reviewed after the champion's label "
            f"cut-off ({facts.champion_labels_until or 'unknown'})."
            if facts.champion_version is not None
            else "."
        ),
        "",
        "| held-out figure | champion (training run) | new challenger |",
        "| --- | --- | --- |",
    ]
    for name in sorted(facts.new_metrics):
        old = facts.champion_metrics.get(name)
        lines.append(
            f"| {name} | {'–' if old is None else f'{old:.4f}'} | {facts.new_metrics[name]:.4f} |"
        )
    lines += [
        "",
        "The two training runs' held-out months can differ: only the promotion above compares "
        "like with like.",
        "",
        "## Features whose importance moved most",
        "",
    ]
    if facts.moves.empty:
        lines.append("No champion to compare with.")
    elif float(facts.moves["change"].abs().max()) < 1e-9:
        lines.append("No feature's importance moved: the models rely on the features alike.")
    else:
        lines += ["| feature | champion | new challenger | change |", "| --- | --- | --- | --- |"]
        for row in facts.moves.itertuples():
            lines.append(
                f"| {row.feature} | {row.before:.3f} | {row.after:.3f} | {row.change:+.3f} |"
            )
        lines += [
            "",
            "Importance: the mean of the LightGBM gain share and the IsolationForest "
            "contribution share, on the new challenger's training invoices.",
        ]
    lines += ["", "## Next", "", facts.next_step, ""]
    return "\n".join(lines)
