"""The `tillit` command line: one Typer app, each command a thin call into the package.

Heavy libraries (MLflow, SHAP, LightGBM) are imported inside the commands that
need them, so `tillit --help` and `tillit validate` start quickly.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from tillit.errors import TillitError

app = typer.Typer(
    name="tillit",
    help="Rank home-care invoices for human review before payment, with reasons.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., object])

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config (default: built-in defaults)."),
]
DataOption = Annotated[
    Path, typer.Option("--data", "-d", help="Input folder with the contract tables.")
]


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def _clean_errors(command: F) -> F:
    """Bad input and bad requests end with a message and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        from pydantic import ValidationError

        try:
            return command(*args, **kwargs)
        except TillitError as exc:
            _fail(str(exc))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            _fail(f"bad value for {where}: {first['msg']}")

    return wrapper  # type: ignore[return-value]


def default_run_dir(kind: str) -> Path:
    """A new folder `runs/<kind>-<UTC time>/` for a run's outputs."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{kind}-{stamp}"


@app.command()
@_clean_errors
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the tables into.")],
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    clients: Annotated[int | None, typer.Option(help="Number of clients.")] = None,
    months: Annotated[int | None, typer.Option(help="Number of months.")] = None,
    start: Annotated[str | None, typer.Option(help="First period, YYYY-MM.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    config: ConfigOption = None,
    profile: Annotated[
        str | None,
        typer.Option(help="tidy, or messy (honest noise of real exports, drawn by seed)."),
    ] = None,
) -> None:
    """Simulate a municipality: every contract table plus truth.parquet (never read by scoring)."""
    import time

    from tillit.config import load_config
    from tillit.data.io import write_frame, write_tables
    from tillit.simulate import simulate as run_simulation

    if fmt not in ("parquet", "csv"):
        _fail(f"--format must be parquet or csv, not {fmt!r}")
    defaults = load_config(config).simulation
    if profile is not None and profile not in ("tidy", "messy"):
        _fail(f"--profile must be tidy or messy, not {profile!r}")
    overrides = {
        "seed": seed,
        "clients": clients,
        "months": months,
        "start": start,
        "profile": profile,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = type(defaults).model_validate({**defaults.model_dump(), **given})
    began = time.perf_counter()
    municipality = run_simulation(settings)
    write_tables(municipality.tables, out, fmt)
    write_frame(municipality.truth, out / "truth.parquet")
    seconds = time.perf_counter() - began
    for name, frame in municipality.tables.items():
        typer.echo(f"  {name:<17} {len(frame):>10,} rows")
    irregular = int(municipality.truth["irregular"].sum())
    typer.echo(
        f"simulated {settings.clients} clients over {settings.months} months "
        f"(seed {settings.seed}) in {seconds:.1f} s: {irregular} irregular invoices "
        f"of {len(municipality.truth)}"
    )
    if municipality.parameters:
        drawn = ", ".join(f"{k} {v:.3g}" for k, v in municipality.parameters.items())
        typer.echo(f"profile {settings.profile}, drawn by seed: {drawn}")
    typer.echo(f"data written to {out}")


@app.command()
@_clean_errors
def validate(
    data: DataOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default runs/validate-<UTC time>)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check a folder against data contract v1; quarantine bad rows; exit 2 if it is unusable."""
    from tillit import CONTRACT_VERSION
    from tillit.config import load_config
    from tillit.data.io import read_raw_tables, write_frame, write_json
    from tillit.data.validate import check_quarantine_limit, validate_tables

    settings = load_config(config)
    out = out or default_run_dir("validate")
    result = validate_tables(read_raw_tables(data), settings.validation)
    report = result.report()
    report["data"] = str(data)
    report["max_quarantine_share"] = settings.validation.max_quarantine_share
    over = result.over_limit(settings.validation.max_quarantine_share)
    report["usable"] = not over
    write_json(report, out / "validation.json")
    write_frame(result.quarantine, out / "quarantine.parquet")
    typer.echo(f"data contract v{CONTRACT_VERSION}: {data}")
    typer.echo(f"  {'table':<17} {'rows read':>10} {'quarantined':>12}")
    for name, counts in result.summary.items():
        typer.echo(f"  {name:<17} {counts['rows_read']:>10,} {counts['rows_quarantined']:>12,}")
    typer.echo(f"report written to {out}")
    check_quarantine_limit(result, settings.validation)


StoreOption = Annotated[
    Path,
    typer.Option(
        "--store", help="Folder of the local MLflow store (MLFLOW_TRACKING_URI overrides)."
    ),
]
PeriodOption = Annotated[str, typer.Option("--period", "-p", help="Billing month, YYYY-MM.")]


@app.command()
@_clean_errors
def features(
    data: DataOption,
    period: PeriodOption,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Feature table file (.parquet or .csv).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Build one month's feature table (one row per invoice) with its findings and quarantine."""
    from tillit.config import load_config
    from tillit.jobs import run_features

    out = out or default_run_dir("features") / f"features_{period}.parquet"
    figures = run_features(data, period, out, load_config(config))
    typer.echo(
        f"{figures.invoices:,} invoices described, {figures.findings:,} hard findings, "
        f"{figures.quarantined:,} quarantined, in {figures.seconds} s"
    )
    if figures.validation_quarantine_file is not None:
        typer.echo(
            f"{figures.rows_quarantined_by_validation:,} input rows broke the contract: "
            f"see {figures.validation_quarantine_file}"
        )
    typer.echo(f"feature table written to {out}")


@app.command()
@_clean_errors
def train(
    data: DataOption,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
) -> None:
    """Train both scorers with a time split, log to MLflow and register the challenger."""
    from tillit.config import load_config
    from tillit.jobs import run_train

    settings = load_config(config)
    outcome = run_train(data, settings, config, store)
    result, ref = outcome.result, outcome.model
    evaluation = result.evaluation
    typer.echo(
        f"held-out month {evaluation.period}, judged on {evaluation.basis}"
        + (" (biased by how reviews were picked)" if evaluation.basis == "audit_outcomes" else "")
        + f"; review capacity k = {evaluation.k}"
    )
    typer.echo(f"  {'ranking':<28} {'AP':>6} {'P@k':>6} {'R@k':>6} {'money@k':>8} {'ROC-AUC':>8}")
    for ranking in ("combined", "lightgbm", "isolation_forest", "rule_billed_over_registered"):
        m = evaluation.metrics
        typer.echo(
            f"  {ranking:<28} {m[ranking + '_average_precision']:>6.3f} {m[ranking + '_precision_at_k']:>6.3f} "
            f"{m[ranking + '_recall_at_k']:>6.3f} {m[ranking + '_money_caught_at_k']:>8.3f} {m[ranking + '_roc_auc']:>8.3f}"
        )
    schemes = {k: v for k, v in evaluation.metrics.items() if k.startswith("combined_recall_at_k_")}
    for name, value in sorted(schemes.items()):
        typer.echo(f"  recall@k {name.removeprefix('combined_recall_at_k_'):<26} {value:.3f}")
    typer.echo(
        f"registered {ref.name} version {ref.version} as '{ref.alias}' (run {ref.run_id}) "
        f"in {outcome.total_seconds} s"
    )


@app.command()
@_clean_errors
def promote(
    force: Annotated[
        bool, typer.Option(help="Promote even if the challenger is not better.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why, when forcing (kept as a tag).")] = None,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
) -> None:
    """Make the challenger champion if it beats the champion on the primary metric."""
    from tillit.config import load_config
    from tillit.jobs import run_promote

    decision = run_promote(load_config(config), store, force, reason)
    typer.echo(decision.message)
    if not decision.promoted:
        raise typer.Exit(code=1)


@app.command()
@_clean_errors
def score(
    data: DataOption,
    period: PeriodOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default runs/score-<period>)."),
    ] = None,
    model_alias: Annotated[
        str, typer.Option(help="Registry alias of the model to use.")
    ] = "champion",
    lang: Annotated[
        str | None,
        typer.Option(help="Language of reasons and report: en or sv (default: scoring.language)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier run's outputs in --out.")
    ] = False,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
) -> None:
    """Score a month: risk list, explanations, report.html and manifest.json in --out."""
    from tillit.config import load_config
    from tillit.jobs import run_score

    settings = load_config(config)
    lang = lang or settings.scoring.language
    if lang not in ("en", "sv"):
        _fail(f"--lang must be en or sv, not {lang!r}")
    out = out or Path("runs") / f"score-{period}"
    outcome = run_score(data, period, out, settings, model_alias, lang, store, overwrite)
    counts = outcome.manifest["counts"]
    typer.echo(
        f"{counts['received']:,} invoices received: {counts['scored']:,} scored, "
        f"{counts['quarantined']:,} quarantined; {counts['flagged']:,} flagged for review "
        f"in {outcome.manifest['timings_seconds']['total']} s"
    )
    for pattern in outcome.manifest.get("triage", {}).get("patterns", []):
        typer.echo(
            f"pattern, not a finding: {pattern['finding']} on {pattern['month_share']:.0%} "
            f"of the invoices ({pattern['why']})"
        )
    beyond = outcome.manifest["summary"].get("findings_beyond_bound", 0)
    if beyond:
        typer.echo(f"{beyond:,} invoices with a finding beyond the bound: listed, not flagged")
    typer.echo(f"report: {outcome.report}")


@app.command()
@_clean_errors
def feedback(
    data: DataOption,
    decisions: Annotated[
        Path,
        typer.Option(
            "--decisions",
            exists=True,
            dir_okay=False,
            help="Auditors' decisions, CSV or Parquet: invoice_id, decision "
            "(confirmed|cleared|not_reviewed), recovered_sek, reviewer, decided_on, note.",
        ),
    ],
    risk_list: Annotated[
        Path | None,
        typer.Option(
            "--risk-list",
            exists=True,
            dir_okay=False,
            help="The risk list the decisions answer, to mark random checks.",
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
) -> None:
    """Append auditors' decisions to audit_outcomes in --data (append-only); bad ones are rejected."""
    from tillit.config import load_config
    from tillit.jobs import run_feedback

    outcome = run_feedback(data, decisions, risk_list, load_config(config), store)
    rejected = outcome.rejected_rows
    typer.echo(
        f"{outcome.decisions} decisions read: {outcome.accepted} accepted "
        f"({outcome.random_checks} on random checks), {outcome.rejected} rejected; "
        f"{outcome.outcomes_appended} outcomes appended to {outcome.outcomes_file}"
    )
    for row in rejected.itertuples():
        typer.echo(f"  rejected row {row.row_number} ({row.invoice_id}): {row.reason}")


@app.command()
@_clean_errors
def demo(
    data: Annotated[
        Path, typer.Option("--data", "-d", help="Where the demo municipality lives.")
    ] = Path("data/demo"),
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the config's).")] = None,
    clients: Annotated[int | None, typer.Option(help="Number of clients.")] = None,
    months: Annotated[int | None, typer.Option(help="Number of months.")] = None,
    start: Annotated[str | None, typer.Option(help="First period, YYYY-MM.")] = None,
    runs: Annotated[Path, typer.Option(help="Folder for the demo's run outputs.")] = Path(
        "runs/demo"
    ),
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
) -> None:
    """Simulate a municipality, validate, train, promote, score the latest month, print the report path."""
    from tillit.config import load_config
    from tillit.data.io import find_table_file, read_frame
    from tillit.jobs import run_promote

    if not (data / "invoices.parquet").exists():
        simulate(out=data, seed=seed, clients=clients, months=months, start=start, config=config)
    else:
        typer.echo(
            f"using the simulated municipality already in {data} (delete it to simulate anew)"
        )
    validate(data=data, out=runs / "validate", config=config)
    train(data=data, config=config, store=store)
    decision = run_promote(load_config(config), store)
    typer.echo(decision.message + ("" if decision.promoted else "; the champion in place scores"))
    period = str(read_frame(find_table_file(data, "invoices"))["period"].max())
    score(
        data=data,
        period=period,
        out=runs / f"score-{period}",
        model_alias="champion",
        lang=None,
        overwrite=True,
        config=config,
        store=store,
    )


@app.command()
@_clean_errors
def log(
    last: Annotated[int | None, typer.Option(min=1, help="Show only the newest N records.")] = None,
    store: StoreOption = Path("models"),
) -> None:
    """Show the audit log: every train, promote, score and feedback run; checks its hash chain."""
    from tillit.jobs import AUDIT_LOG
    from tillit.ops.auditlog import format_log, read_log, verify_log

    path = store / AUDIT_LOG
    if not path.exists():
        _fail(
            f"no audit log at {path} yet: it starts with the first train, promote, score or feedback"
        )
    problems = verify_log(path)
    typer.echo(format_log(read_log(path), last))
    if problems:
        typer.secho(
            "the audit log has been altered:\n  " + "\n  ".join(problems), err=True, fg="red"
        )
        raise typer.Exit(code=1)
    typer.echo(f"hash chain intact ({path})")


@app.command()
@_clean_errors
def pseudonymise(
    in_dir: Annotated[Path, typer.Option("--in", help="Export folder with real identifiers.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pseudonymised copy.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="Secret key (at least 32 bytes).")],
    new_key: Annotated[
        bool, typer.Option(help="Create the key file first (never overwrites).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Replace identifiers of people with keyed hashes (HMAC-SHA-256) before data reaches tillit."""
    from tillit.config import load_config
    from tillit.jobs import run_pseudonymise

    figures = run_pseudonymise(in_dir, out, key_file, new_key, load_config(config))
    typer.echo(f"{figures.files} files, {figures.rows:,} rows pseudonymised into {out}")


def main() -> None:
    """Entry point for `python -m tillit`."""
    app()
