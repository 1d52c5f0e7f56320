"""`tillit providers` and the provider model's part of `tillit train` and `tillit promote`.

`tillit providers --data DIR --period YYYY-MM --out OUT` ranks the providers active
in the month (and lists applicants) with the registered provider model, and writes
provider_risk.parquet/.csv, providers.html and manifest.json into OUT atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tillit import CONTRACT_VERSION
from tillit.config import TillitConfig
from tillit.data.contract import TABLES
from tillit.data.io import (
    data_fingerprint,
    file_sha256,
    read_frame,
    read_raw_tables,
    write_frame,
)
from tillit.data.validate import check_quarantine_limit, validate_tables
from tillit.errors import NothingToScoreError, TillitError
from tillit.jobs.common import (
    MANIFEST,
    LoadedData,
    StageClock,
    publish_model_card,
    record_promotion,
    record_training,
    refuse_earlier_outputs,
    refuse_unsafe_output,
    run_facts,
    staged_output,
    write_manifest_and_record,
)
from tillit.ops.integrity import load_verified_pickle

if TYPE_CHECKING:
    from tillit.modelling.provider_model import ProviderRiskModel, ProviderTraining
    from tillit.modelling.risk_model import RiskModel
    from tillit.modelling.train import TrainingResult
    from tillit.ops.tracking import ModelRef, PromotionDecision
    from tillit.review.fairness import FairnessAudit
    from tillit.review.modelcard import ModelCardData

PROVIDER_TRUTH_FILE = "provider_truth.parquet"
# Every file a scorecard run may write into --out (checked before the work).
PROVIDER_FILES: tuple[str, ...] = (
    "provider_risk.parquet",
    "provider_risk.csv",
    "providers.html",
    "quarantine.parquet",
    MANIFEST,
)
# Tables only the invoice features read.
_INVOICE_ONLY = frozenset({"visits", "grants", "hospital_stays"})
PROVIDER_RISK_COLUMNS = (
    "provider_id",
    "org_number",
    "legal_form",
    "period",
    "part",
    "rank",
    "risk_score",
    "n_invoices",
    "amount_sek",
    "n_high_risk",
    "high_risk_amount_sek",
    "n_hard_finding",
    "high_risk_invoice_share",
    # The report's counts (NA when the month was not scored beside this page).
    "n_flagged",
    "n_flagged_with_finding",
    "flagged_amount_in_dispute_sek",
    "amount_in_dispute_sek",
    "is_case",
    "model_risk",
    "reasons",
    "facts",
    "model_name",
    "model_version",
    "run_id",
)


@dataclass(frozen=True)
class ProviderTrainOutcome:
    """The registered provider model and how it ranked the held-out month (or why there is none)."""

    model: ModelRef | None
    training: ProviderTraining | None
    fairness: FairnessAudit | None
    message: str


@dataclass(frozen=True)
class ProvidersOutcome:
    """Where `tillit providers` wrote its outputs, and its manifest."""

    out: Path
    page: Path
    manifest: dict[str, Any]


def invoice_scores(
    features: pd.DataFrame,
    model: RiskModel | None,
    finding_floor: float = 0.9,
    findings: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per invoice: the invoice model's risk (without a model the hard findings alone) and
    the money in dispute (`review.dispute`)."""
    from tillit.review.dispute import hours_and_money_in_dispute

    finding = features["hard_finding_count"].to_numpy() > 0
    risk = np.where(finding, finding_floor, 0.0) if model is None else model.risk(features)
    dispute = hours_and_money_in_dispute(features, findings)["amount_in_dispute_sek"]
    return pd.DataFrame(
        {
            "invoice_id": features["invoice_id"].to_numpy(),
            "provider_id": features["provider_id"].to_numpy(),
            "period": features["period"].to_numpy(),
            "amount_sek": features["amount_sek"].to_numpy(),
            "risk_score": np.asarray(risk, dtype="float64"),
            "has_hard_finding": finding,
            "amount_in_dispute_sek": dispute.to_numpy(dtype="float64"),
        }
    )


def _trend_periods(period: str, months: int) -> list[str]:
    from tillit.features.queries import month_index, period_of

    m = month_index(period)
    return [period_of(m - back) for back in range(months, -1, -1)]


def provider_labels(data_dir: Path, tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, str]:
    """Provider-month labels: simulated truth when present, else from audit outcomes."""
    from tillit.modelling.provider_model import labels_from_reviews
    from tillit.modelling.train import review_labels

    path = Path(data_dir) / PROVIDER_TRUTH_FILE
    if path.is_file():
        truth = read_frame(path)
        return truth[["provider_id", "period", "irregular"]], "truth"
    labels = labels_from_reviews(tables["invoices"], review_labels(tables.get("audit_outcomes")))
    return labels, "audit_outcomes"


def train_providers(
    loaded: LoadedData,
    result: TrainingResult,
    data_dir: Path,
    config: TillitConfig,
    store: Path,
) -> ProviderTrainOutcome:
    """Fit, judge and register the provider model beside the invoice model (part of `tillit train`).

    The invoice risk of the held-out month is the held-out invoice model's; earlier
    months are scored by the refit invoice model. A data set that cannot judge a
    provider model (no irregular provider in the held-out month) registers none and
    says why; invoice training is not affected.
    """
    from tillit.features.providers import register_columns, register_profile
    from tillit.modelling.provider_model import provider_months, train_provider_model

    tables = loaded.validation.tables
    features = result.features
    scores = invoice_scores(features, result.model)
    held = result.evaluation.scored.set_index("invoice_id")["combined"]
    in_eval = scores["period"].to_numpy() == result.evaluation.period
    scores.loc[in_eval, "risk_score"] = scores.loc[in_eval, "invoice_id"].map(held).to_numpy()
    from tillit.jobs.link import linkage_for

    periods = sorted(features["period"].unique())
    profile = register_profile(
        tables,
        periods,
        config.features,
        linkage_for(tables, config),
        config.link.evidence_min_probability,
    )
    months = provider_months(scores, profile.profile, periods, config.providers)
    labels, basis = provider_labels(data_dir, tables)
    months = months.merge(labels, on=["provider_id", "period"], how="left")
    months["irregular"] = months["irregular"].astype("float64")
    if basis == "truth":  # truth covers every provider-month: no row means regular
        active = months["n_invoices"] > 0
        months.loc[active, "irregular"] = months.loc[active, "irregular"].fillna(0.0)
    try:
        training = train_provider_model(
            months,
            result.evaluation.period,
            config.providers,
            register_columns(config.features),
            CONTRACT_VERSION,
            basis,
            config.training.seed,
        )
    except TillitError as exc:
        return ProviderTrainOutcome(None, None, None, f"no provider model registered: {exc}")
    fairness = provider_fairness(training, config)
    inputs = months.drop(columns="irregular")  # the label is no input
    ref = _log_provider_training(training, inputs, fairness, config, loaded.fingerprint, store)
    card = _provider_card(training, ref, fairness, config, fingerprint=loaded.fingerprint)
    cards = publish_model_card(card, ref, store)
    record_training(
        store,
        ref,
        config.hash(),
        loaded.fingerprint,
        training.label_counts,
        cards,
        {
            "eval_period": training.eval_period,
            "evaluation_basis": basis,
            "method": training.model.method,
            "eval_combined_average_precision": training.metrics["combined_average_precision"],
            "eval_rule_best_average_precision": training.metrics["rule_best_average_precision"],
            "best_rule": training.best_rule,
        },
    )
    m = training.metrics
    message = (
        f"provider model ({training.model.method}): AP {m['combined_average_precision']:.3f} on "
        f"{training.eval_period} ({int(m['n_positive'])} irregular of {int(m['combined_n'])} "
        f"providers); weighted {m['weighted_average_precision']:.3f}, logistic "
        f"{m.get('logistic_average_precision', float('nan')):.3f}, best single register rule "
        f"({training.best_rule}) {m['rule_best_average_precision']:.3f}; registered {ref.name} "
        f"version {ref.version} as '{ref.alias}'"
    )
    return ProviderTrainOutcome(ref, training, fairness, message)


def provider_fairness(training: ProviderTraining, config: TillitConfig) -> FairnessAudit:
    """Flag rate, precision and recall of the top-k providers by size band, age band, legal form."""
    from tillit.features.catalog import PROVIDER_AGE_BANDS, PROVIDER_SIZE_BANDS, band_labels
    from tillit.modelling.evaluate import top_k_mask
    from tillit.review.fairness import fairness_audit

    scored = training.scored
    frame = pd.DataFrame(
        {
            "provider_size_band": band_labels(scored["n_clients"].to_numpy(), PROVIDER_SIZE_BANDS),
            "provider_age_band": band_labels(
                scored["provider_age_years"].to_numpy(), PROVIDER_AGE_BANDS
            ),
            "provider_legal_form": scored["legal_form"].astype("str").to_numpy(),
            "label": scored["label"].astype("float64").to_numpy(),
            "flagged": top_k_mask(scored["risk_score"].to_numpy(), training.k),
        }
    )
    return fairness_audit(
        frame,
        "label",
        "flagged",
        ("provider_size_band", "provider_age_band", "provider_legal_form"),
        config.providers.fairness_min_group_size,
    )


def _log_provider_training(
    training: ProviderTraining,
    months: pd.DataFrame,
    fairness: FairnessAudit,
    config: TillitConfig,
    fingerprint: str,
    store: Path,
) -> ModelRef:
    """Log and register the provider model (core/registry.py), the invoice model's way.

    Its signature: the provider-month frame's numeric columns in (the evidence is computed
    from them; identifiers and texts are not read), one risk in [0, 1] per row out.
    """
    import tempfile

    from tillit.core.registry import ModelRun, register, standard_tags
    from tillit.ops import tracking

    settings = config.providers.model_dump(mode="json")
    with tempfile.TemporaryDirectory() as scratch:
        # Through write_frame, like every CSV tillit writes (formula cells neutralised).
        for part in ("by_group", "disparity"):
            write_frame(getattr(fairness, part), Path(scratch) / "fairness" / f"{part}.csv")
        entry = ModelRun(
            model_name=config.providers.model_name,
            run_name=tracking.run_name(f"train-providers-{training.eval_period}"),
            model=training.model,
            artifact="provider_model",
            tags={
                **standard_tags(config.hash(), fingerprint),
                "contract_version": CONTRACT_VERSION,
                "feature_schema": "provider-evidence-v1",
                "eval_period": training.eval_period,
                "evaluation_basis": training.basis,
                "trained_periods": ",".join(training.model.trained_periods),
                "method": training.model.method,
                "best_rule": training.best_rule,
            },
            # `labels_labelled` is what promotion reads (ops.tracking.model_facts), for every model.
            params={
                **{f"providers.{k}": v for k, v in settings.items()},
                **{f"labels_{k}": v for k, v in training.label_counts.items()},
            },
            metrics={
                **{f"eval_{k}": v for k, v in training.metrics.items()},
                **fairness.summary_metrics(),
            },
            artifacts={"fairness": Path(scratch) / "fairness"},
            signature_input=months.select_dtypes(include=["number", "bool"]),
        )
        return register(entry, store)


def _provider_card(
    training: ProviderTraining,
    ref: ModelRef,
    fairness: FairnessAudit,
    config: TillitConfig,
    *,
    fingerprint: str,
) -> ModelCardData:
    """The provider model's card (published beside the invoice model's, the same way)."""
    import datetime as dt

    from tillit.modelling.provider_model import EVIDENCE, INVOICE_WEIGHTS, REGISTER_WEIGHTS
    from tillit.ops import tracking
    from tillit.review.modelcard import ModelCardData

    weights = {**INVOICE_WEIGHTS, **REGISTER_WEIGHTS}
    m = training.metrics
    keys = ("average_precision", "precision_at_k", "recall_at_k", "roc_auc")
    return ModelCardData(
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        created_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        intended_use=(
            "Ranks the providers active in a month (LOV home care) so that contract follow-up "
            "officers can choose which companies to look into, and screens applicants on the "
            "register before approval. Each provider comes with the facts and reasons behind "
            "its rank.\n\nThe model points; people decide. A rank is a reason to look, not a "
            "finding: no contract, payment or approval decision is made on it."
        ),
        out_of_scope=(
            "- Refusing an approval, ending a contract or stopping a payment on the rank alone.\n"
            "- Scoring or ranking people: board persons appear only as pseudonymised evidence of "
            "a link between companies.\n"
            "- Reading the risk as a probability."
        ),
        training_data={
            "periods": f"{training.model.trained_periods[0]} to {training.model.trained_periods[-1]}",
            **training.label_counts,
            "method": training.model.method,
        },
        features=[(name, f"evidence in [0, 1]; weight {weights[name]:g}") for name in EVIDENCE],
        evaluation={k: m[f"combined_{k}"] for k in keys}
        | {f"weighted_{k}": m[f"weighted_{k}"] for k in keys}
        | {f"logistic_{k}": m[f"logistic_{k}"] for k in keys if f"logistic_{k}" in m},
        evaluation_basis=training.basis,
        eval_period=training.eval_period,
        capacity_k=training.k,
        row_unit="providers",
        baseline={k: m[f"rule_best_{k}"] for k in keys},
        fairness=fairness,
        known_limits=[
            f"Best single register rule on the held-out month: {training.best_rule}.",
            "Few providers are irregular in a month: the held-out figures rest on a handful of "
            "positives and swing from month to month.",
            "The invoice part of earlier months is scored by the refit invoice model (in "
            "sample); only the held-out month uses the held-out invoice model.",
            "The register knows sanctions and terminated contracts, not bankruptcies: a board "
            "person's bankrupt or struck-off company elsewhere is not seen.",
            "Small provider groups give unstable rates; see the fairness audit.",
        ],
        config_hash=config.hash(),
        data_fingerprint=fingerprint,
        git_commit=tracking.git_commit(),
        contract_version=CONTRACT_VERSION,
        feature_schema="provider-evidence-v1",
    )


def promote_providers(
    config: TillitConfig, store: Path, force: bool = False, reason: str | None = None
) -> PromotionDecision | None:
    """Promote the provider challenger like the invoice one; None when none was ever registered."""
    from tillit.ops.tracking import ModelNotFoundError, promote

    try:
        decision = promote(
            config.providers.model_name,
            "average_precision",
            force,
            reason,
            store,
            tolerance=config.training.promotion_tolerance,
        )
    except ModelNotFoundError:
        return None
    record_promotion(store, decision, config.hash(), force, reason)
    return decision


def _risk_list_href(out: Path, period: str) -> str | None:
    """The month's invoice risk list in OUT's sibling folder `score-<period>`, when one exists."""
    sibling = Path(out).resolve().parent / f"score-{period}"
    for name in ("report.html", "risk_list.csv"):
        if (sibling / name).is_file():
            return f"../score-{period}/{name}"
    return None


def run_providers(
    data_dir: Path,
    period: str,
    out: Path,
    config: TillitConfig,
    language: str,
    store: Path,
    applicants_only: bool = False,
    overwrite: bool = False,
    alias: str = "champion",
) -> ProvidersOutcome:
    """Rank the month's providers (or only the applicants) and write the scorecard atomically.

    Raises:
        TillitError: a bad period (exit 2); ModelUnavailableError: no provider model in the
            store (exit 3); NothingToScoreError: no invoice (or applicant) in the month (exit 4).
    """
    from tillit.data.periods import parse_period

    parse_period(period)
    out = Path(out)
    refuse_unsafe_output(out, {"--data": data_dir}, store=store)
    refuse_earlier_outputs(out, PROVIDER_FILES, overwrite)
    with staged_output(out, overwrite) as work:
        manifest = _providers_into(
            work, out, data_dir, period, config, language, store, applicants_only, alias
        )
    return ProvidersOutcome(out=out, page=out / "providers.html", manifest=manifest)


def _providers_into(
    work: Path,
    final: Path,
    data_dir: Path,
    period: str,
    config: TillitConfig,
    language: str,
    store: Path,
    applicants_only: bool,
    alias: str,
) -> dict[str, Any]:
    from tillit.features import build_features
    from tillit.features.providers import register_profile
    from tillit.modelling.provider_model import (
        invoice_side_priority,
        provider_months,
        register_findings,
    )
    from tillit.ops import tracking
    from tillit.review.provider_report import (
        fact_texts,
        invoice_side_reasons,
        rank_within_parts,
        reason_texts,
        render_providers_page,
    )

    clock = StageClock()
    lap = clock.lap
    # The models first: a store without one stops the run before the export is read.
    client = tracking.connect(store)
    ref = tracking.resolve_alias(client, config.providers.model_name, alias)
    model = _load_provider_model(client, store, ref)
    invoice_ref: ModelRef | None
    invoice_model: RiskModel | None = None
    try:
        invoice_ref = tracking.resolve_alias(client, config.training.model_name, alias)
    except tracking.RegistryError:
        invoice_ref = None
    lap("load_models")
    # The register, clients and invoices first: visits are read only when needed.
    raw = read_raw_tables(
        data_dir, config.input, names=[name for name in TABLES if name not in _INVOICE_ONLY]
    )
    fingerprint = data_fingerprint(data_dir)
    lap("read")
    wanted = _trend_periods(period, config.providers.trend_months)
    billed = sorted(set(raw["invoices"]["period"].astype("str")) & set(wanted))
    if applicants_only:
        billed = []
    parts = [invoice_scores(_empty_features(), None)]
    reused: list[str] = []
    for month in billed:
        shared = _shared_risk_list(final, month, invoice_ref, fingerprint)
        if shared is not None:
            parts.append(shared)
            reused.append(month)
    missing = [month for month in billed if month not in reused]
    # Visits, grants and stays feed only the invoice features: when every month's
    # invoices were scored already (by `tillit score` on the same data, which validated
    # them), the scorecard validates the register, clients and invoices alone.
    if missing:
        raw.update(read_raw_tables(data_dir, config.input, names=_INVOICE_ONLY))
    validation = validate_tables(raw)
    quarantine = None
    if not validation.quarantine.empty:
        quarantine = write_frame(validation.quarantine, work / "quarantine.parquet")
    check_quarantine_limit(validation, config.validation)
    tables = validation.tables
    lap("validate")
    if missing:
        floor = config.training.blend.finding_floor
        # Loaded only when a month was not scored already (loading costs seconds).
        if invoice_ref is not None:
            invoice_model = tracking.load_risk_model(client, invoice_ref, store)
            floor = invoice_model.blend.finding_floor
        feature_set = build_features(tables, missing, config.features)
        if invoice_model is not None:
            invoice_model.check_features(feature_set.features)
        parts.append(
            invoice_scores(feature_set.features, invoice_model, floor, feature_set.findings)
        )
    scores = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    lap("invoice_features_and_scores")
    from tillit.jobs.link import linkage_for

    linkage = linkage_for(tables, config)
    register = register_profile(
        tables, period, config.features, linkage, config.link.evidence_min_probability
    )
    lap("link_and_register")
    months = provider_months(scores, register.profile, [period], config.providers)
    if applicants_only:
        months = months[months["is_applicant"]].reset_index(drop=True)
    if months.empty:
        raise NothingToScoreError(
            f"no {'applicants' if applicants_only else 'providers'} to list for {period} in "
            f"{data_dir}: nothing to score"
        )
    model_risk = model.risk(months)
    contributions = model.reason_contributions(months)
    month_run = (
        _shared_score_run(final, period, invoice_ref, fingerprint) if not applicants_only else None
    )
    months = _with_report_counts(months, month_run)
    in_register = register_findings(months, model.register_columns)
    tier, risk = invoice_side_priority(months, model_risk, in_register.max(axis=1).to_numpy())
    lap("provider_risk")
    reasons = reason_texts(
        months,
        contributions,
        model.register_columns,
        language,
        config.providers.n_reasons,
        config.features.provider_event_window_days,
        config.features.client_growth_window_months,
        exclude=("hard_finding_share",),
        shared_facts=register.shared_facts,
    )
    # What was found in the register (a board person or shared facts linking it to a
    # sanctioned or terminated company) also decides the group: said next, never twice.
    in_register_reasons = reason_texts(
        months,
        in_register,
        model.register_columns,
        language,
        len(in_register.columns),
        config.features.provider_event_window_days,
        config.features.client_growth_window_months,
        shared_facts=register.shared_facts,
    )
    # The invoice side's words first (they decide the group); its count of invoices with a
    # finding replaces the model's share-of-findings reason, which would say it twice.
    reasons = [
        [*found, *linked, *(r for r in model_reasons if r not in linked)]
        for found, linked, model_reasons in zip(
            invoice_side_reasons(months, language), in_register_reasons, reasons, strict=True
        )
    ]
    facts = fact_texts(months, register.links, register.events, language, register.shared_facts)
    table = months.assign(
        part=np.where(months["n_invoices"] > 0, "invoices_and_register", "register_only"),
        risk_score=risk,
        model_risk=np.round(model_risk, 12),
        tier=tier,
        reasons_list=reasons,
        facts_list=facts,
        reasons=[" | ".join(r) for r in reasons],
        facts=[" | ".join(f) for f in facts],
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
    )
    table["rank"] = rank_within_parts(table)
    table = table.sort_values(["part", "rank"], kind="stable").reset_index(drop=True)
    output = table.loc[:, list(PROVIDER_RISK_COLUMNS)]
    for column in (
        "amount_sek",
        "high_risk_amount_sek",
        "amount_in_dispute_sek",
        "flagged_amount_in_dispute_sek",
    ):
        output[column] = output[column].round(2)
    for column in ("n_flagged", "n_flagged_with_finding"):
        output[column] = output[column].astype("Int64")
    for column in ("n_invoices", "n_high_risk", "n_hard_finding"):
        output[column] = output[column].astype("int64")
    run_info = {
        "period": period,
        "model_name": ref.name,
        "model_version": ref.version,
        "method": model.method,
        "invoice_model_version": invoice_ref.version if invoice_ref else "none (findings only)",
        "config_hash": config.hash(),
        "data_fingerprint": fingerprint,
    }
    href = _risk_list_href(final, period)
    page = render_providers_page(table, run_info, language, href, counted=month_run is not None)
    outputs = {
        "provider_risk.parquet": write_frame(output, work / "provider_risk.parquet"),
        "provider_risk.csv": write_frame(output, work / "provider_risk.csv"),
    }
    (work / "providers.html").write_text(page, "utf-8")
    outputs["providers.html"] = work / "providers.html"
    if quarantine is not None:
        # Listed, so a later --overwrite knows it is this run's file.
        outputs["quarantine.parquet"] = quarantine
    lap("write")
    timings = clock.total()
    counts = {
        "providers_listed": len(output),
        "active_providers": int((output["part"] == "invoices_and_register").sum()),
        "applicants": int((output["part"] == "register_only").sum()),
        "invoices": int(output["n_invoices"].sum()),
    }
    manifest: dict[str, Any] = {
        **run_info,
        "model_alias": alias,
        "run_id": ref.run_id,
        "invoice_model_name": config.training.model_name,
        "contract_version": CONTRACT_VERSION,
        "linkage": linkage.method if linkage is not None else None,
        "language": language,
        "applicants_only": applicants_only,
        "data": str(data_dir),
        "risk_list": href,
        "invoice_scores_reused_from_score_runs": reused,
        "counts": counts,
        **run_facts(config, timings, outputs),
    }
    details = {"period": period, "out": str(final), "alias": alias}
    write_manifest_and_record(
        store, "providers", work, manifest, ref, config.hash(), fingerprint, details
    )
    return manifest


def _shared_score_run(
    final: Path, period: str, invoice_ref: ModelRef | None, fingerprint: str
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The risk list and manifest of `score-<period>` beside OUT, when made by the same model
    from the same data (the only risk list whose counts the page may show as the report's)."""
    import json

    folder = Path(final).resolve().parent / f"score-{period}"
    manifest_path, risk_path = folder / "manifest.json", folder / "risk_list.parquet"
    if invoice_ref is None or not manifest_path.is_file() or not risk_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text("utf-8"))
    same = (
        manifest.get("model_name") == invoice_ref.name
        and str(manifest.get("model_version")) == invoice_ref.version
        and manifest.get("data_fingerprint") == fingerprint
        and manifest.get("period") == period
        and manifest.get("outputs", {}).get("risk_list.parquet") == file_sha256(risk_path)
    )
    if not same:
        return None
    return read_frame(risk_path), manifest


def _shared_risk_list(
    final: Path, period: str, invoice_ref: ModelRef | None, fingerprint: str
) -> pd.DataFrame | None:
    """The invoice scores of `score-<period>` beside OUT, when made by the same model from the same data.

    `tillit score` has then already built the month's features and scored them:
    the scorecard reads its risk list instead of doing it again.
    """
    shared = _shared_score_run(final, period, invoice_ref, fingerprint)
    if shared is None:
        return None
    risk_list = shared[0]
    scored = risk_list[risk_list["status"] == "scored"]
    risk = scored["risk_score"].astype("float64").to_numpy()
    dispute = (
        scored["amount_in_dispute_sek"].astype("float64").fillna(0.0).to_numpy()
        if "amount_in_dispute_sek" in scored
        else np.zeros(len(scored))
    )
    return pd.DataFrame(
        {
            "invoice_id": scored["invoice_id"].astype("str").to_numpy(),
            "provider_id": scored["provider_id"].astype("str").to_numpy(),
            "period": scored["period"].astype("str").to_numpy(),
            "amount_sek": scored["amount_sek"].astype("float64").to_numpy(),
            "risk_score": risk,
            "has_hard_finding": scored["findings"].fillna("").astype("str").str.len().to_numpy()
            > 0,
            "amount_in_dispute_sek": dispute,
        }
    )


def _with_report_counts(
    months: pd.DataFrame, month_run: tuple[pd.DataFrame, dict[str, Any]] | None
) -> pd.DataFrame:
    """The month's rows with the report's counts per provider: flagged, with a finding, in
    dispute, and whether the report opens with the provider as a case (NA: not scored)."""
    from tillit.review.triage import flagged_per_provider

    out = months.copy()
    if month_run is None:
        out["n_flagged"] = np.nan
        out["n_flagged_with_finding"] = np.nan
        out["flagged_amount_in_dispute_sek"] = np.nan
        out["is_case"] = False
        return out
    risk_list, manifest = month_run
    counts = flagged_per_provider(risk_list).set_index("provider_id")
    ids = out["provider_id"].astype("str")
    out["n_flagged"] = ids.map(counts["flagged_invoices"]).astype("float64").fillna(0.0)
    out["n_flagged_with_finding"] = ids.map(counts["with_finding"]).astype("float64").fillna(0.0)
    out["flagged_amount_in_dispute_sek"] = (
        ids.map(counts["amount_in_dispute_sek"]).astype("float64").fillna(0.0)
    )
    cases = {str(case["provider_id"]) for case in manifest.get("triage", {}).get("cases", [])}
    out["is_case"] = ids.isin(cases).to_numpy()
    return out


def _load_provider_model(client: Any, store: Path, ref: ModelRef) -> ProviderRiskModel:
    """The registered version's pickled model (its pyfunc wraps the same file), once verified."""
    model: ProviderRiskModel = load_verified_pickle(client, store, ref, "provider_model.joblib")
    return model


# What `invoice_scores` reads of a feature frame, and its types.
_SCORED_FEATURES = {
    "invoice_id": "str",
    "provider_id": "str",
    "period": "str",
    "amount_sek": "float64",
    "hard_finding_count": "float64",
}


def _empty_features() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in _SCORED_FEATURES.items()})


__all__ = [
    "PROVIDER_RISK_COLUMNS",
    "ProviderTrainOutcome",
    "ProvidersOutcome",
    "invoice_scores",
    "promote_providers",
    "run_providers",
    "train_providers",
]
