"""A model card for every registered model version, in Markdown and self-contained HTML.

The card tells a reviewer, a data-protection officer or an auditor of the
municipality what the model is for, what it must not be used for, what it was
trained on, how well it ranks compared with the one-line rule, what it does to
different groups of providers and clients, where it is known to fall short,
and how to reproduce it. The HTML needs no network (no fonts, scripts or
style sheets from elsewhere) and prints cleanly.

Fairness by construction: a card cannot be made for a model whose features
include a protected attribute (the client's district, birth year or age,
gender and the like) or one of the feature table's audit-only columns. Those
are used to *audit* the model, never as its inputs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tillit.features.catalog import check_no_protected_features
from tillit.review.fairness import FairnessAudit
from tillit.review.markup import html_table, md_table, md_text

DEFAULT_INTENDED_USE = (
    "Ranks a month's home-care invoices (LOV) by the risk of an irregularity so that the "
    "municipality's reviewers can choose which invoices to examine before they are paid, "
    "within a fixed review capacity. Each flagged invoice comes with the reasons behind its "
    "score.\n\n"
    "The model flags; people decide. A flag is a reason to look, not a finding: every "
    "decision about an invoice, a payment or a provider is made by a reviewer on the "
    "evidence they collect."
)
DEFAULT_OUT_OF_SCOPE = (
    "- Automatic decisions: refusing, reducing, stopping or delaying a payment on the score "
    "alone.\n"
    "- Scoring, profiling or ranking people: clients, staff, owners or board members.\n"
    "- Judging a provider as a whole, or its approval under LOV, from its invoices' scores.\n"
    "- Use on data that has not been mapped to, and validated against, the data contract "
    "version named below.\n"
    "- Use in another municipality, service or period without a new evaluation there.\n"
    "- Reading a score as a probability or an amount of money at stake."
)
DEFAULT_KNOWN_LIMITS: tuple[str, ...] = (
    "Labels from audit outcomes exist only for invoices someone chose to review; figures "
    "computed on them inherit that choice, and schemes nobody has looked for stay unseen.",
    "The model learns from the past: new kinds of irregularity may rank low until they are "
    "labelled.",
    "Scores rank invoices within a run; they are not calibrated probabilities.",
    "Small groups of providers or districts give unstable rates; see the fairness audit.",
)

_EVALUATION_BASES = {
    "truth": (
        "Figures are computed against the true irregularities of simulated data: every "
        "invoice has a known label, so precision and recall are unbiased for the simulation, "
        "but say nothing certain about a real municipality."
    ),
    "audit_outcomes": (
        "Figures are computed against earlier audit outcomes. Only reviewed invoices have a "
        "label, and they were picked by rules, at random or after feedback: the figures "
        "favour irregularities earlier reviews were looking for, and unreviewed invoices "
        "count as unknown, not as clean."
    ),
}


@dataclass(frozen=True, kw_only=True)
class ModelCardData:
    """Everything a model card says, gathered by training; rendering adds nothing new."""

    model_name: str
    model_version: str | None
    run_id: str | None
    created_utc: str
    intended_use: str = DEFAULT_INTENDED_USE
    out_of_scope: str = DEFAULT_OUT_OF_SCOPE
    # Periods, invoices per period, label counts by source, quarantined counts.
    training_data: dict[str, object]
    # (name, plain-language meaning), in model input order.
    features: list[tuple[str, str]]
    evaluation: dict[str, float]
    # "truth" or "audit_outcomes" get a standard explanation; other text is shown as given.
    evaluation_basis: str
    eval_period: str
    capacity_k: int
    # What the capacity counts: the invoice model ranks invoices, the provider model providers.
    capacity_unit: str = "invoices"
    per_scheme_recall: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    fairness: FairnessAudit | None = None
    known_limits: list[str] = field(default_factory=lambda: list(DEFAULT_KNOWN_LIMITS))
    config_hash: str
    data_fingerprint: str
    git_commit: str
    contract_version: str
    feature_schema: str

    def __post_init__(self) -> None:
        check_no_protected_features(name for name, _ in self.features)


# ---------------------------------------------------------------- formatting


def _fmt(value: object) -> str:
    """Numbers as a reader expects them: thousands separated, three decimals, n/a for missing."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if value in (float("inf"), float("-inf")):
            return "∞" if value > 0 else "-∞"
        return f"{value:,.3f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{_label(k)}: {_fmt(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value) or "none"
    return str(value)


def _label(key: object) -> str:
    return str(key).replace("_", " ")


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """Paragraphs ("p", [text]) and bullet lists ("ul", items) of a plain text."""
    out: list[tuple[str, list[str]]] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            out.append(("ul", [line[2:] for line in lines]))
        elif lines:
            out.append(("p", [" ".join(lines)]))
    return out


class _Doc:
    """Builds the Markdown and the HTML side by side, so both always hold the same sections."""

    def __init__(self) -> None:
        self.md: list[str] = []
        self.html: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.md.append(f"{'#' * level} {md_text(text)}")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        for kind, items in _blocks(text):
            if kind == "ul":
                self.bullets(items)
            else:
                self.md.append(md_text(items[0]))
                self.html.append(f"<p>{html.escape(items[0])}</p>")

    def bullets(self, items: Sequence[str]) -> None:
        self.md.append("\n".join(f"- {md_text(item)}" for item in items))
        lis = "".join(f"<li>{html.escape(item)}</li>" for item in items)
        self.html.append(f"<ul>{lis}</ul>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.md.append(md_table(header, rows))
        self.html.append(html_table(header, rows))

    def raw(self, markdown: str, html_fragment: str) -> None:
        self.md.append(markdown)
        self.html.append(html_fragment)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #111; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #333; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #999; }
h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #999; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td { font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85rem; }
.caveat { font-style: italic; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  th { background: none; }
}
""".strip()


def render_model_card(card: ModelCardData) -> tuple[str, str]:
    """The card as (Markdown, HTML); the HTML is one self-contained page.

    Raises:
        ValueError: a feature is a protected attribute or an audit-only column.
    """
    check_no_protected_features(name for name, _ in card.features)
    version = card.model_version or "unregistered"
    title = f"Model card: {card.model_name} (version {version})"
    doc = _Doc()
    doc.text(
        f"Created {card.created_utc} UTC. MLflow run {card.run_id or 'n/a'}. "
        f"Evaluated on {card.eval_period}."
    )

    doc.heading("Intended use")
    doc.text(card.intended_use)

    doc.heading("Out of scope")
    doc.text(card.out_of_scope)

    doc.heading("Training data")
    if card.training_data:
        doc.table(["Item", "Value"], [[_label(k), _fmt(v)] for k, v in card.training_data.items()])
    else:
        doc.text("No description of the training data was recorded.")

    doc.heading("Features")
    doc.text(
        f"{len(card.features)} inputs. No attribute of a person (the client's district, birth "
        "year or age, and the like) is an input; such attributes are used only in the fairness "
        "audit below."
    )
    doc.table(["Feature", "Meaning"], [[name, meaning] for name, meaning in card.features])

    doc.heading("Evaluation")
    doc.text(
        f"Period {card.eval_period}, review capacity k = {card.capacity_k:,} "
        f"{card.capacity_unit} per period. Basis: {card.evaluation_basis}."
    )
    explanation = _EVALUATION_BASES.get(card.evaluation_basis)
    if explanation:
        doc.text(explanation)
    metrics = list(card.evaluation) + [k for k in card.baseline if k not in card.evaluation]
    doc.table(
        ["Metric", "Model", "Rule baseline"],
        [[_label(m), _fmt(card.evaluation.get(m)), _fmt(card.baseline.get(m))] for m in metrics],
    )
    if card.per_scheme_recall:
        doc.heading("Recall at capacity by scheme", level=3)
        doc.table(
            ["Scheme", "Recall"],
            [[scheme, _fmt(value)] for scheme, value in card.per_scheme_recall.items()],
        )

    doc.heading("Fairness audit")
    if card.fairness is None:
        doc.text("No fairness audit was run for this version.")
    else:
        doc.raw(card.fairness.to_markdown(), card.fairness.to_html())

    doc.heading("Known limits")
    if card.known_limits:
        doc.bullets(card.known_limits)
    else:
        doc.text("None recorded.")

    doc.heading("Reproducibility")
    doc.table(
        ["Item", "Value"],
        [
            ["model name", card.model_name],
            ["model version", version],
            ["MLflow run", card.run_id or "n/a"],
            ["created (UTC)", card.created_utc],
            ["config hash", card.config_hash],
            ["data fingerprint", card.data_fingerprint],
            ["git commit", card.git_commit],
            ["data contract version", card.contract_version],
            ["feature schema", card.feature_schema],
        ],
    )

    markdown = f"# {md_text(title)}\n\n" + "\n\n".join(doc.md) + "\n"
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(doc.html) + "\n</body>\n</html>\n"
    )
    return markdown, page
