"""The `tillit` command line: one Typer app, each command a thin call into the package.

Heavy libraries (MLflow, SHAP, LightGBM) are imported inside the commands that
need them, so `tillit --help` and `tillit validate` start quickly.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from tillit.errors import EXIT_BAD_INPUT, TillitError

if TYPE_CHECKING:
    from tillit.config import InputConfig, TillitConfig

app = typer.Typer(
    name="tillit",
    help="Rank home-care invoices for human review before payment, with reasons.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., object])

# What a payment-run job reads from the exit code (tillit.errors owns the numbers).
_EXIT_BAD = "2 bad input or request (the export, a config or a flag, such as a bad --period)"
_EXIT_NO_MODEL = "3 no usable model in --store (none registered, or it failed verification)"
_EXIT_EMPTY = "4 nothing to score: the export has no invoices (rows) in --period"


def _exit_codes(*codes: str) -> str:
    """A command's help epilog listing its exit codes."""
    return "Exit codes: 0 done; " + "; ".join(codes) + "."


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config (default: built-in defaults)."),
]
DataOption = Annotated[
    Path, typer.Option("--data", "-d", help="Input folder with the contract tables.")
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress on stderr (it is shown only on a terminal anyway)."
    ),
]
# For a command that writes but never opens the model store: the store is named so that
# refuse_unsafe_output keeps --out from being it, lying in it or holding it.
NamedStoreOption = Annotated[
    Path,
    typer.Option(
        "--store",
        help="Folder of the model store: not read, named so --out never replaces or enters it.",
    ),
]


OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace what an earlier tillit run wrote in --out (only what its manifest lists).",
    ),
]


CsvSepOption = Annotated[
    str | None,
    typer.Option(
        "--csv-sep", help='CSV separator: ",", ";" or tab (default: input.csv_sep, auto).'
    ),
]
DecimalOption = Annotated[
    str | None,
    typer.Option(
        "--decimal", help='Decimal mark in CSV: "." or "," (default: input.decimal, auto).'
    ),
]
EncodingOption = Annotated[
    str | None,
    typer.Option(
        "--encoding", help="CSV encoding: utf-8, cp1252 or latin-1 (default: input.encoding, auto)."
    ),
]


def _load_settings(
    config: Path | None, csv_sep: str | None, decimal: str | None, encoding: str | None
) -> TillitConfig:
    """The config file's settings with the CSV flags given on the command line on top."""
    from tillit.config import InputConfig, load_config

    settings = load_config(config)
    given = {"csv_sep": csv_sep, "decimal": decimal, "encoding": encoding}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        return settings
    reading = InputConfig.model_validate({**settings.input.model_dump(), **given})
    return settings.model_copy(update={"input": reading})


# Table mode (any payment stream): one table file described by a YAML table spec.
OptionalDataOption = Annotated[
    Path | None, typer.Option("--data", "-d", help="Input folder with the contract tables.")
]
TableOption = Annotated[
    Path | None,
    typer.Option("--table", help="Table mode: one table file (.parquet or .csv), with --spec."),
]
SpecOption = Annotated[
    Path | None, typer.Option("--spec", help="Table mode: the YAML table spec (configs/tables/).")
]


def _table_mode(data: Path | None, table: Path | None, spec: Path | None) -> bool:
    """Whether a command runs on a table with a spec; exactly one mode must be asked for."""
    if table is None and spec is None:
        if data is None:
            _fail("--data is required (or --table with --spec for a table of your own)")
        return False
    if table is None or spec is None:
        _fail("table mode needs both --table FILE and --spec SPEC")
    if data is not None:
        _fail("give either --data (home care) or --table with --spec, not both")
    return True


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=code)


def _clean_errors(command: F) -> F:
    """A TillitError ends with one message and its exit code (2, 3 or 4), never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        from pydantic import ValidationError

        try:
            return command(*args, **kwargs)
        except TillitError as exc:
            _fail(str(exc), exc.exit_code)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            _fail(f"bad value for {where}: {first['msg']}")

    return wrapper  # type: ignore[return-value]


def _month_first(period: str, data: Path, reading: InputConfig | None) -> None:
    """The month as asked and whether the export has invoices in it, before any heavy import.

    A bad period exits 2 naming the format, a month without invoices exits 4 naming the
    months present; only the invoices' period column is read (see tillit.data.periods).
    """
    from tillit.data.periods import parse_period, refuse_empty_month

    parse_period(period)
    refuse_empty_month(data, period, reading)


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
    quiet: QuietOption = False,
    profile: Annotated[
        str | None,
        typer.Option(help="tidy, or messy (honest noise of real exports, drawn by seed)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace what an earlier simulate wrote in --out.")
    ] = False,
    store: NamedStoreOption = Path("models"),
) -> None:
    """Simulate a municipality: every contract table plus truth.parquet (never read by scoring)."""
    import time

    from tillit.config import load_config
    from tillit.data.io import file_sha256, write_frame, write_json, write_tables
    from tillit.jobs.common import (
        MANIFEST,
        refuse_unlisted_files,
        refuse_unsafe_output,
        staged_output,
    )
    from tillit.ops import progress
    from tillit.simulate import SIMULATED_FILES
    from tillit.simulate import simulate as run_simulation

    refuse_unsafe_output(out, {"--config": config}, store=store)
    refuse_unlisted_files(out, SIMULATED_FILES, overwrite)
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
    with (
        progress.session(f"simulate {settings.clients} clients", quiet),
        staged_output(out, overwrite) as work,
    ):
        municipality = run_simulation(settings)
        progress.lap("tables", "write")
        # Contract tables are tillit's own input: written as is, not neutralised for a
        # spreadsheet (an apostrophe would change ids and negative amounts).
        written = write_tables(municipality.tables, work, fmt)
        written.append(write_frame(municipality.truth, work / "truth.parquet"))
        if municipality.provider_truth is not None:
            written.append(
                write_frame(municipality.provider_truth, work / "provider_truth.parquet")
            )
        if municipality.honest_patterns is not None:
            written.append(
                write_frame(municipality.honest_patterns, work / "honest_patterns.parquet")
            )
        if municipality.link_truth is not None:
            written.append(write_frame(municipality.link_truth, work / "link_truth.parquet"))
        # What `--overwrite` may replace next time: only the files listed here.
        manifest = {
            "command": "simulate",
            "settings": settings.model_dump(mode="json"),
            "format": fmt,
            "outputs": {path.name: file_sha256(path) for path in written},
        }
        write_json(manifest, work / MANIFEST)
        progress.lap("write")
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


@app.command(epilog=_exit_codes(_EXIT_BAD))
@_clean_errors
def validate(
    data: DataOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default runs/validate-<UTC time>)."),
    ] = None,
    config: ConfigOption = None,
    csv_sep: CsvSepOption = None,
    decimal: DecimalOption = None,
    encoding: EncodingOption = None,
    store: NamedStoreOption = Path("models"),
    overwrite: OverwriteOption = False,
) -> None:
    """Check a folder against the data contract; quarantine bad rows; exit 2 if it is unusable."""
    from tillit import CONTRACT_VERSION
    from tillit.data.io import file_sha256, read_raw_tables, write_frame, write_json
    from tillit.data.validate import check_quarantine_limit, validate_tables
    from tillit.jobs.common import (
        MANIFEST,
        refuse_existing_output,
        refuse_unlisted_files,
        refuse_unsafe_output,
        staged_output,
    )

    out = out or default_run_dir("validate")
    refuse_unsafe_output(
        out,
        {"--data": data, "--config": config},
        store=store,
        writes=[out / "validation.json", out / "quarantine.parquet"],
    )
    refuse_existing_output(out, overwrite)
    refuse_unlisted_files(out, ["validation.json", "quarantine.parquet", MANIFEST], overwrite)
    settings = _load_settings(config, csv_sep, decimal, encoding)
    result = validate_tables(read_raw_tables(data, settings.input))
    report = result.report()
    report["data"] = str(data)
    report["max_quarantine_share"] = settings.validation.max_quarantine_share
    over = result.over_limit(settings.validation.max_quarantine_share)
    report["usable"] = not over
    with staged_output(out, overwrite) as work:
        written = [
            write_json(report, work / "validation.json"),
            write_frame(result.quarantine, work / "quarantine.parquet"),
        ]
        # What `--overwrite` may replace next time: only the files listed here.
        outputs = {path.name: file_sha256(path) for path in written}
        write_json({"command": "validate", "outputs": outputs}, work / MANIFEST)
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


@app.command(epilog=_exit_codes(_EXIT_BAD))
@_clean_errors
def link(
    data: DataOption,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the links and entities.")
    ] = None,
    config: ConfigOption = None,
    method: Annotated[
        str | None,
        typer.Option(help="auto (Splink if installed), splink or exact (default: config)."),
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="duckdb or spark, for Splink (default: config).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the files of an earlier link run.")
    ] = False,
    store: NamedStoreOption = Path("models"),
) -> None:
    """Link providers (contact facts) and persons (name token, birth year) across registers.

    `--store` is not read: it names the model store so `--out` never lands inside it.
    """
    from tillit.config import load_config
    from tillit.jobs.common import refuse_unsafe_output
    from tillit.jobs.link import run_link

    out = out or default_run_dir("link")
    refuse_unsafe_output(out, {"--data": data, "--config": config}, store=store)
    settings = load_config(config)
    given = {k: v for k, v in {"method": method, "backend": backend}.items() if v is not None}
    if given:
        try:
            link_settings = type(settings.link).model_validate(
                {**settings.link.model_dump(), **given}
            )
        except ValueError as exc:
            _fail(f"--method must be auto, splink or exact and --backend duckdb or spark ({exc})")
        settings = settings.model_copy(update={"link": link_settings})
    outcome = run_link(data, out, settings, overwrite, store=store)
    typer.echo(
        f"{outcome.method}: {outcome.provider_links:,} provider pair(s) and "
        f"{outcome.person_links:,} person pair(s) kept as evidence (match probability >= "
        f"{settings.link.evidence_min_probability:g}); {outcome.merged_records:,} id(s) resolved "
        f"to another id's entity (>= {settings.link.min_probability:g}); written to "
        f"{outcome.out} in {outcome.seconds} s"
    )


@app.command(epilog=_exit_codes(_EXIT_BAD, _EXIT_EMPTY))
@_clean_errors
def features(
    data: DataOption,
    period: PeriodOption,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Feature table file (.parquet or .csv).")
    ] = None,
    config: ConfigOption = None,
    csv_sep: CsvSepOption = None,
    decimal: DecimalOption = None,
    encoding: EncodingOption = None,
    store: NamedStoreOption = Path("models"),
    overwrite: OverwriteOption = False,
) -> None:
    """Build one month's feature table (one row per invoice) with its findings and quarantine."""
    from tillit.jobs.common import refuse_existing_files, refuse_unsafe_output
    from tillit.jobs.features import feature_files

    out = out or default_run_dir("features") / f"features_{period}.parquet"
    refuse_unsafe_output(out, {"--data": data, "--config": config}, store=store, kind="file")
    refuse_existing_files(out, feature_files(out), overwrite)
    settings = _load_settings(config, csv_sep, decimal, encoding)
    _month_first(period, data, settings.input)
    from tillit.jobs import run_features

    figures = run_features(data, period, out, settings, overwrite)
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


@app.command(epilog=_exit_codes(_EXIT_BAD))
@_clean_errors
def train(
    data: OptionalDataOption = None,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
    csv_sep: CsvSepOption = None,
    decimal: DecimalOption = None,
    encoding: EncodingOption = None,
    quiet: QuietOption = False,
    table: TableOption = None,
    spec: SpecOption = None,
) -> None:
    """Train the invoice model and, on --data, the provider model; register both as challenger.

    The invoice model (LightGBM and an isolation forest, blended) is judged on a held-out
    month. The provider model of `tillit providers` is trained from the same run's invoice
    risks, so it is trained here too, and said in the output; table mode trains one model.
    """
    from tillit.jobs import run_train
    from tillit.jobs.common import refuse_unsafe_output
    from tillit.ops import progress

    settings = _load_settings(config, csv_sep, decimal, encoding)
    table_mode = _table_mode(data, table, spec)
    refuse_unsafe_output(
        None, {"--data": data, "--table": table, "--spec": spec, "--config": config}, store=store
    )
    if table_mode:
        assert table is not None and spec is not None  # _table_mode checked both
        _train_table(table, spec, settings, store)
        return
    assert data is not None
    with progress.session("train", quiet):
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
        f"invoice model: registered {ref.name} version {ref.version} as '{ref.alias}' "
        f"(run {ref.run_id}) in {outcome.total_seconds} s"
    )
    if outcome.providers is not None:
        typer.echo(f"also trained, for `tillit providers`: {outcome.providers.message}")


def _train_table(table: Path, spec: Path, settings: TillitConfig, store: Path) -> None:
    from tillit.jobs.table_train import run_table_train

    outcome = run_table_train(table, spec, settings, store)
    evaluation = outcome.result.evaluation
    typer.echo(f"{evaluation.basis}; capacity {evaluation.capacity}")
    typer.echo(f"  {'ranking':<20} {'AP':>6} {'P@k':>6} {'R@k':>6} {'money@k':>8} {'ROC-AUC':>8}")
    m = evaluation.metrics
    for ranking in ("combined", "lightgbm", "isolation_forest", "baseline_amount"):
        if f"{ranking}_average_precision" in m:
            typer.echo(
                f"  {ranking:<20} {m[ranking + '_average_precision']:>6.3f} "
                f"{m[ranking + '_precision_at_k']:>6.3f} {m[ranking + '_recall_at_k']:>6.3f} "
                f"{m[ranking + '_money_caught_at_k']:>8.3f} {m[ranking + '_roc_auc']:>8.3f}"
            )
    ref = outcome.model
    typer.echo(
        f"registered {ref.name} version {ref.version} as '{ref.alias}' (run {ref.run_id}) "
        f"in {outcome.total_seconds} s"
    )


@app.command(
    epilog=_exit_codes(
        "1 the challenger was not promoted (the figures say why)",
        _EXIT_BAD,
        "3 no challenger in --store to promote (train one first)",
    )
)
@_clean_errors
def promote(
    force: Annotated[
        bool, typer.Option(help="Promote even if the challenger is not better.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why, when forcing (kept as a tag).")] = None,
    other_definitions: Annotated[
        bool,
        typer.Option(
            help="Promote a challenger trained on other feature definitions than this tillit "
            "computes (needs --reason; docs/monthly-loop.md)."
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", "-d", help="Data to score both models on a month neither learned from."
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
    spec: SpecOption = None,
) -> None:
    """Make the challenger champion if it does as well on a month neither learned from (README)."""
    from tillit.config import load_config
    from tillit.jobs import run_promote
    from tillit.jobs.common import refuse_unsafe_output
    from tillit.jobs.providers import promote_providers

    refuse_unsafe_output(None, {"--data": data, "--spec": spec, "--config": config}, store=store)
    settings = load_config(config)
    if spec is not None:
        from tillit.jobs.table_train import run_table_promote

        decision = run_table_promote(spec, settings, store, force, reason)
        typer.echo(decision.message)
        if not decision.promoted:
            raise typer.Exit(code=1)
        return
    decision = run_promote(settings, store, force, reason, data, other_definitions)
    typer.echo(decision.message)
    provider_decision = promote_providers(settings, store, force, reason)
    if provider_decision is not None:
        typer.echo(f"provider model: {provider_decision.message}")
    if not decision.promoted:
        raise typer.Exit(code=1)


@app.command(epilog=_exit_codes(_EXIT_BAD))
@_clean_errors
def retrain(
    data: DataOption,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Folder for summary.md (default runs/retrain-<UTC time>)."
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
    quiet: QuietOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Monthly loop: validate, judge the waiting challenger, train a new one, write a summary."""
    from tillit.config import load_config
    from tillit.jobs.retrain import run_retrain
    from tillit.ops import progress

    out = out or default_run_dir("retrain")
    with progress.session("retrain", quiet):
        outcome = run_retrain(data, load_config(config), config, store, out, overwrite)
    if outcome.judged is not None:
        typer.echo(outcome.judged.message)
    elif "not judged" in outcome.summary:
        typer.echo(next(line for line in outcome.summary.splitlines() if "not judged" in line))
    ref = outcome.trained.model
    evaluation = outcome.trained.result.evaluation
    typer.echo(
        f"trained {ref.name} version {ref.version} as '{ref.alias}': held-out {evaluation.period} "
        f"({evaluation.basis}) average precision "
        f"{evaluation.metrics['combined_average_precision']:.4f}"
    )
    if outcome.first_champion is not None:
        typer.echo(outcome.first_champion.message)
    typer.echo(f"summary: {outcome.summary_path}")


@app.command(epilog=_exit_codes(_EXIT_BAD, _EXIT_NO_MODEL, _EXIT_EMPTY))
@_clean_errors
def score(
    data: OptionalDataOption = None,
    period: PeriodOption = "",
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
    csv_sep: CsvSepOption = None,
    decimal: DecimalOption = None,
    encoding: EncodingOption = None,
    quiet: QuietOption = False,
    table: TableOption = None,
    spec: SpecOption = None,
    engine: Annotated[
        str,
        typer.Option(
            help="Where the feature SQL runs: duckdb (embedded) or spark (pip install "
            "'tillit[spark]' and Java 17; docs/scale.md)."
        ),
    ] = "duckdb",
    spark_master: Annotated[
        str | None,
        typer.Option(help="Spark master for --engine spark (local[*], spark://host:7077, yarn)."),
    ] = None,
    score_on: Annotated[
        str,
        typer.Option(
            help="Where the model scores: driver (this process) or executors (Spark, "
            "mlflow.pyfunc.spark_udf from the verified model copy; needs --engine spark)."
        ),
    ] = "driver",
) -> None:
    """Score a month: risk list, explanations, report.html and manifest.json in --out.

    The period is checked before any data is read; table mode takes the spec's period
    (day YYYY-MM-DD, week YYYY-Www or month YYYY-MM) or a range FROM..TO.
    """
    if not period:
        _fail("--period is required (YYYY-MM)")
    if engine not in ("duckdb", "spark"):
        _fail(f"--engine must be duckdb or spark, not {engine!r}")
    if spark_master and engine != "spark":
        _fail("--spark-master needs --engine spark")
    if score_on not in ("driver", "executors"):
        _fail(f"--score-on must be driver or executors, not {score_on!r}")
    if score_on == "executors" and engine != "spark":
        _fail("--score-on executors needs --engine spark")
    table_mode = _table_mode(data, table, spec)
    if table_mode and engine != "duckdb":
        _fail("--engine spark scores home-care exports (--data), not table mode")
    from tillit.jobs.common import refuse_earlier_outputs, refuse_unsafe_output

    if table_mode:
        from tillit.jobs.table_score import TABLE_SCORE_FILES as written
    else:
        from tillit.jobs.score import SCORE_FILES as written
    out = out or Path("runs") / f"score-{period.replace('..', '_')}"
    refuse_unsafe_output(  # before the month is looked for in the data
        out, {"--data": data, "--table": table, "--spec": spec, "--config": config}, store=store
    )
    refuse_earlier_outputs(out, written, overwrite)
    settings = _load_settings(config, csv_sep, decimal, encoding)
    if not table_mode:
        assert data is not None
        _month_first(period, data, settings.input)  # before the heavy imports below
    from tillit.jobs import run_score
    from tillit.ops import progress

    lang = lang or settings.scoring.language
    if lang not in ("en", "sv"):
        _fail(f"--lang must be en or sv, not {lang!r}")
    if table_mode:
        from tillit.jobs.table_score import run_table_score

        assert table is not None and spec is not None
        done = run_table_score(
            table, spec, period, out, settings, model_alias, store, overwrite, lang
        )
        c = done.manifest["counts"]
        typer.echo(
            f"{c['received']:,} rows received, {c['quarantined']:,} quarantined; "
            f"{c['scored']:,} scored in {period}; {c['flagged']:,} flagged for review "
            f"({c['random_checks']:,} random checks) in {done.manifest['timings_seconds']['total']} s"
        )
        typer.echo(f"report: {done.report}")
        return
    assert data is not None
    with progress.session(f"score {period}", quiet):
        outcome = run_score(
            data,
            period,
            out,
            settings,
            model_alias,
            lang,
            store,
            overwrite,
            engine,
            spark_master,
            score_on,
        )
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
    for warning in outcome.drift_warnings:
        typer.secho(f"warning: drift: {warning}", err=True, fg=typer.colors.YELLOW)
    if outcome.drift_warnings:
        typer.secho(
            "warning: this month differs from the training months; the list may be less "
            f"reliable (see the report and {outcome.out / 'drift.json'})",
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(f"report: {outcome.report}")


@app.command(epilog=_exit_codes(_EXIT_BAD, _EXIT_NO_MODEL, _EXIT_EMPTY))
@_clean_errors
def drift(
    data: DataOption,
    period: PeriodOption,
    model_alias: Annotated[
        str, typer.Option(help="Registry alias of the model to compare with.")
    ] = "champion",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the figures as JSON here.")
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
    overwrite: OverwriteOption = False,
) -> None:
    """How far a month has moved from the model's training months (what `score` writes to drift.json)."""
    from tillit.config import load_config
    from tillit.data.io import write_json
    from tillit.jobs.common import refuse_existing_files, refuse_unsafe_output, staged_files
    from tillit.jobs.drift import drift_payload, run_drift

    refuse_unsafe_output(out, {"--data": data, "--config": config}, store=store, kind="file")
    if out is not None:
        refuse_existing_files(out, [out], overwrite)
    settings = load_config(config)
    _month_first(period, data, settings.input)
    outcome = run_drift(data, period, settings, model_alias, store)
    report = outcome.report
    if out is not None:
        with staged_files(out, "drift") as stage:
            write_json(drift_payload(report, outcome.note, outcome.model_version), stage(out))
    if report is None:
        typer.echo(outcome.note)
        return
    typer.echo(
        f"{period} against the training months of version {outcome.model_version} "
        f"({report.training_periods[0]} to {report.training_periods[-1]}): "
        f"largest feature PSI {report.max_feature_psi:.3f}, risk score PSI {report.score_psi:.3f}, "
        f"flagged share {report.flagged_share:.1%} (training {report.reference_flagged_share:.1%})"
    )
    typer.echo(f"  {'feature':<40} {'PSI':>7} {'training median':>16} {'month median':>13}")
    for row in report.feature_psi.head(settings.drift.report_features).itertuples():
        typer.echo(
            f"  {row.feature:<40} {row.psi:>7.3f} {row.reference_median:>16.4g} {row.month_median:>13.4g}"
        )
    for warning in report.warnings:
        typer.secho(f"warning: drift: {warning}", err=True, fg=typer.colors.YELLOW)
    if report.warnings:
        typer.secho(
            "warning: this month differs from the training months; its list may be less reliable",
            err=True,
            fg=typer.colors.YELLOW,
        )
    else:
        typer.echo("no drift above the thresholds")


@app.command(epilog=_exit_codes(_EXIT_BAD, _EXIT_NO_MODEL, _EXIT_EMPTY))
@_clean_errors
def providers(
    data: DataOption,
    period: Annotated[str, typer.Option(help="Month to rank, YYYY-MM.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the scorecard.")],
    applicants: Annotated[
        bool, typer.Option("--applicants", help="List only applicants (no approval date).")
    ] = False,
    lang: Annotated[str | None, typer.Option("--lang", help="sv or en.")] = None,
    model_alias: Annotated[str, typer.Option(help="Registry alias of both models.")] = "champion",
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier run in --out.")] = False,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
) -> None:
    """Rank the month's providers (and screen applicants) with facts and reasons; never decides."""
    from tillit.config import load_config
    from tillit.data.periods import parse_period
    from tillit.jobs.common import refuse_earlier_outputs, refuse_unsafe_output
    from tillit.jobs.providers import PROVIDER_FILES

    refuse_unsafe_output(out, {"--data": data, "--config": config}, store=store)
    refuse_earlier_outputs(out, PROVIDER_FILES, overwrite)  # before the month is looked for
    settings = load_config(config)
    if applicants:  # applicants are screened in any month, invoices or not
        parse_period(period)
    else:
        _month_first(period, data, settings.input)
    from tillit.jobs.providers import run_providers

    language = lang or settings.scoring.language
    if language not in ("sv", "en"):
        _fail(f"--lang must be sv or en, not {language!r}")
    outcome = run_providers(
        data, period, out, settings, language, store, applicants, overwrite, model_alias
    )
    counts = outcome.manifest["counts"]
    typer.echo(
        f"{counts['active_providers']} providers active in {period} and "
        f"{counts['applicants']} applicants listed in "
        f"{outcome.manifest['timings_seconds']['total']} s"
    )
    typer.echo(f"scorecard: {outcome.page}")


@app.command()
@_clean_errors
def feedback(
    decisions: Annotated[
        Path,
        typer.Option(
            "--decisions",
            exists=True,
            dir_okay=False,
            help="Auditors' decisions, CSV or Parquet: invoice_id, decision "
            "(confirmed|cleared|not_reviewed), recovered_sek, reviewer, decided_on, note, "
            "reversal_reason (required when a cleared reverses a confirmed).",
        ),
    ],
    data: OptionalDataOption = None,
    risk_list: Annotated[
        Path | None,
        typer.Option(
            "--risk-list",
            exists=True,
            dir_okay=False,
            help="The risk list the decisions answer, to mark random checks: the file "
            "`tillit score` wrote, unchanged, with its manifest.json beside it.",
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = Path("models"),
    csv_sep: CsvSepOption = None,
    decimal: DecimalOption = None,
    encoding: EncodingOption = None,
    table: TableOption = None,
    spec: SpecOption = None,
) -> None:
    """Append auditors' decisions to audit_outcomes in --data (append-only); bad ones are rejected."""
    from tillit.jobs import run_feedback

    settings = _load_settings(config, csv_sep, decimal, encoding)
    if _table_mode(data, table, spec):
        from tillit.jobs.table_feedback import run_table_feedback

        assert table is not None and spec is not None
        done = run_table_feedback(table, spec, decisions, risk_list, settings, store)
        typer.echo(
            f"{done.decisions} decisions read: {done.accepted} accepted ({done.random_checks} on "
            f"random checks), {len(done.rejected_rows)} rejected; log: {done.log_file}"
        )
        for row in done.rejected_rows.itertuples(index=False):
            typer.echo(f"  rejected row {row[0]} ({row[1]}): {row[2]}")
        _say_repeats_and_reversals(done.skipped, done.reversals)
        return
    assert data is not None
    outcome = run_feedback(data, decisions, risk_list, settings, store)
    rejected = outcome.rejected_rows
    typer.echo(
        f"{outcome.decisions} decisions read: {outcome.accepted} accepted "
        f"({outcome.random_checks} on random checks), {outcome.rejected} rejected; "
        f"{outcome.outcomes_appended} outcomes appended to {outcome.outcomes_file}"
    )
    for row in rejected.itertuples():
        typer.echo(f"  rejected row {row.row_number} ({row.invoice_id}): {row.reason}")
    _say_repeats_and_reversals(outcome.skipped, outcome.reversals)


def _say_repeats_and_reversals(skipped: int, reversals: int) -> None:
    """The feedback log's controls, said after every feedback run (both modes)."""
    typer.echo(
        f"{skipped} decision(s) already on record (same id, decision, decided_on, reviewer) "
        "skipped, appended nowhere"
    )
    if reversals:
        typer.echo(f"{reversals} confirmed decision(s) reversed, each with its reason in the log")


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
    from tillit.jobs.common import refuse_unsafe_output

    refuse_unsafe_output(
        runs, {"--data": data, "--config": config}, store=store, out_option="--runs"
    )
    if not (data / "invoices.parquet").exists():
        simulate(
            out=data,
            seed=seed,
            clients=clients,
            months=months,
            start=start,
            config=config,
            store=store,
        )
    else:
        typer.echo(
            f"using the simulated municipality already in {data} (delete it to simulate anew)"
        )
    validate(data=data, out=runs / "validate", config=config, store=store, overwrite=True)
    train(data=data, config=config, store=store)
    decision = run_promote(load_config(config), store, data_dir=data)
    typer.echo(decision.message + ("" if decision.promoted else "; the champion in place scores"))
    invoices_file = find_table_file(data, "invoices")
    if invoices_file is None:
        _fail(f"{data} has no invoices table to score")
    period = str(read_frame(invoices_file)["period"].max())
    from tillit.jobs.providers import promote_providers

    provider_decision = promote_providers(load_config(config), store)
    if provider_decision is not None:
        typer.echo(f"provider model: {provider_decision.message}")
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
    verify: Annotated[
        bool, typer.Option("--verify", help="Only verify (no table); exit 1 naming what failed.")
    ] = False,
    anchor: Annotated[
        Path | None,
        typer.Option(
            help="Append the verified head (seq, hash, time) to this file, kept elsewhere."
        ),
    ] = None,
    anchors: Annotated[
        Path | None, typer.Option(help="Also check the log against the anchors in this file.")
    ] = None,
    store: StoreOption = Path("models"),
) -> None:
    """Show the audit log and verify it: chain, HMAC, MLflow copies, manifests, kept heads, anchors."""
    from tillit.jobs import AUDIT_LOG
    from tillit.jobs.common import refuse_unsafe_output
    from tillit.jobs.log import anchor_head, check_audit_trail
    from tillit.ops.auditlog import format_log, known_head, read_log

    if anchor is not None:  # kept where whoever can change the store cannot
        refuse_unsafe_output(anchor, {}, store=store, kind="file", out_option="--anchor")
    path = store / AUDIT_LOG
    if not path.exists() and not (store / "mlflow.db").exists() and known_head(path) is None:
        _fail(
            f"no audit log at {path} yet: it starts with the first train, promote, score or feedback"
        )
    check = check_audit_trail(store, anchors)
    if check.problems == [f"no audit log at {path}"]:  # nothing says one ever existed
        _fail(
            f"no audit log at {path} yet: it starts with the first train, promote, score or feedback"
        )
    if not verify:
        typer.echo(format_log(read_log(path), last))
    if check.problems:
        typer.secho(
            "the audit log has been altered:\n  " + "\n  ".join(check.problems), err=True, fg="red"
        )
        if anchor is not None:
            typer.secho(f"nothing was anchored in {anchor}", err=True, fg="red")
        raise typer.Exit(code=1)
    typer.echo(
        f"hash chain intact and every record's HMAC valid ({check.records} records in {path}); "
        f"checked against {', '.join(check.checked_against)}"
    )
    if anchor is not None:
        written = anchor_head(store, anchor)
        typer.echo(f"anchored record {written['seq']} ({written['record_hash']}) in {anchor}")


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
    store: NamedStoreOption = Path("models"),
    overwrite: OverwriteOption = False,
) -> None:
    """Replace identifiers of people with keyed hashes (HMAC-SHA-256) before data reaches tillit."""
    from tillit.config import load_config
    from tillit.jobs import run_pseudonymise
    from tillit.jobs.common import refuse_unsafe_output

    # --in and --key-file are checked by the job, which says why a key must stay apart.
    refuse_unsafe_output(out, {"--config": config}, store=store)
    figures = run_pseudonymise(in_dir, out, key_file, new_key, load_config(config), overwrite)
    typer.echo(f"{figures.files} files, {figures.rows:,} rows pseudonymised into {out}")
    for note in figures.notes:
        typer.echo(f"  note: {note}")


@app.command("simulate-table")
@_clean_errors
def simulate_table(
    kind: Annotated[str, typer.Option(help="card-payments or transport-trips.")],
    rows: Annotated[int, typer.Option(help="Rows to simulate.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Table file (.parquet or .csv).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    store: NamedStoreOption = Path("models"),
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate an example table for the table mode (specs in configs/tables/)."""
    from tillit.data.io import write_frame
    from tillit.jobs.common import refuse_existing_files, refuse_unsafe_output, staged_files
    from tillit.tables.simulate import simulate_table as run_simulation

    refuse_unsafe_output(out, {}, store=store, kind="file")
    if out.suffix not in (".parquet", ".csv"):
        _fail(f"--out must end in .parquet or .csv, not {out.name!r}")
    refuse_existing_files(out, [out], overwrite)
    frame = run_simulation(kind, rows, seed)
    # A table for tillit to read, like simulate's contract tables: not neutralised.
    with staged_files(out, "simulate-table") as stage:
        write_frame(frame, stage(out), for_spreadsheet=False)
    typer.echo(f"simulated {len(frame):,} rows of {kind} (seed {seed}) into {out}")


def main() -> None:
    """Entry point for `python -m tillit` and the `tillit` script."""
    import sys

    if sys.argv[1:2] == ["score"] and not any("spark" in arg for arg in sys.argv[2:]):
        from tillit import keep_spark_from

        keep_spark_from("mlflow", "shap")  # a score without Spark: they need no pyspark
    try:
        app()
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            _leave(done.code or 0)
        raise


def _leave(code: int) -> NoReturn:
    """End the process once the command is done, without tearing the interpreter down.

    Why: tearing down the thousands of modules a scoring run has imported (MLflow, SHAP
    with numba, scikit-learn, SciPy) costs over a second of CPU after the last output is
    written, for nothing. What an exit must still do is done first: the exit handlers
    (logging, MLflow's, weakref finalizers) run and the standard streams are flushed;
    while a thread that is not a daemon still works, Python ends the process as usual.
    """
    import atexit
    import os
    import sys
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in {sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__} - {None}:
        try:
            stream.flush()  # type: ignore[union-attr]
        except (OSError, ValueError, AttributeError):  # a full disk, a closed or broken pipe
            # Output was lost: a plain interpreter exit says so with 120; so does this.
            code = code or 120
    os._exit(code)
