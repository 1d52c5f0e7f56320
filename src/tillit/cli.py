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
        try:
            return command(*args, **kwargs)
        except TillitError as exc:
            _fail(str(exc))

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
) -> None:
    """Simulate a municipality: every contract table plus truth.parquet (never read by scoring)."""
    import time

    from tillit.config import load_config
    from tillit.io import write_frame, write_tables
    from tillit.simulate import simulate as run_simulation

    settings = load_config(config).simulation
    overrides = {"seed": seed, "clients": clients, "months": months, "start": start}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    settings = type(settings).model_validate(settings.model_dump())
    if fmt not in ("parquet", "csv"):
        _fail(f"--format must be parquet or csv, not {fmt!r}")
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
    from tillit.io import read_raw_tables, write_frame, write_json
    from tillit.validate import check_quarantine_limit, validate_tables

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


def main() -> None:
    """Entry point for `python -m tillit`."""
    app()
