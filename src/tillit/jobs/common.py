"""What every job shares: reading and validating a contract folder, staged outputs, the audit log."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Unpack

import pandas as pd

from tillit.config import TillitConfig
from tillit.data.io import data_fingerprint, read_frame, read_raw_tables, write_frame
from tillit.data.validate import ValidationResult, check_quarantine_limit, validate_tables
from tillit.errors import QuarantineLimitError, TillitError
from tillit.ops.auditlog import AUDIT_LOG, AuditRecord, RecordFields

if TYPE_CHECKING:
    from tillit.ops.tracking import ModelRef, PromotionDecision
    from tillit.review.modelcard import ModelCardData

TRUTH_FILE = "truth.parquet"
MANIFEST = "manifest.json"
__all__ = ["AUDIT_LOG", "MANIFEST", "TRUTH_FILE"]


class OutputExistsError(TillitError):
    """A run would overwrite an earlier run's outputs."""


@dataclass
class StageClock:
    """Seconds per stage of one run, for its manifest; each finished stage is also shown
    as progress (ops/progress.py: on a terminal only)."""

    timings: dict[str, float] = field(default_factory=dict)
    _began: float = field(default_factory=time.perf_counter)
    _clock: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        """The stage `name` has just ended."""
        from tillit.ops import progress

        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now
        progress.lap(name)

    def total(self) -> dict[str, float]:
        """Every stage's seconds and, under `total`, the run's."""
        self.timings["total"] = round(time.perf_counter() - self._began, 3)
        return self.timings


@dataclass(frozen=True)
class LoadedData:
    """A contract folder as read (untyped), as validated, and its fingerprint."""

    raw: dict[str, pd.DataFrame]
    validation: ValidationResult
    fingerprint: str


def load_data(
    data_dir: Path,
    config: TillitConfig,
    quarantine_dir: Path | None = None,
    raw: dict[str, pd.DataFrame] | None = None,
    validation: ValidationResult | None = None,
) -> LoadedData:
    """Read and validate a contract folder; stop when it is unusable.

    The quarantine is written to `quarantine_dir` before the limit is checked,
    so a refused run still leaves the record of why. `raw` and `validation` are the
    folder's tables as `read_raw_tables` read them and `validate_tables` judged them,
    when that is done already (score does it while its model loads).
    """
    if raw is None:
        raw = read_raw_tables(data_dir, config.input)
    if validation is None:
        validation = validate_tables(raw)
    if quarantine_dir is not None and not validation.quarantine.empty:
        write_frame(validation.quarantine, quarantine_dir / "quarantine.parquet")
    check_quarantine_limit(validation, config.validation)
    return LoadedData(raw=raw, validation=validation, fingerprint=data_fingerprint(data_dir))


def read_truth(data_dir: Path) -> pd.DataFrame | None:
    """Simulated ground truth, for evaluation only: scoring never reads it."""
    path = Path(data_dir) / TRUTH_FILE
    return read_frame(path) if path.is_file() else None


# Inputs that are folders whatever their state on disk (an absent store is still the store).
_FOLDER_INPUTS = frozenset({"--data", "--store", "--in"})


def _store_database(store: Path) -> Path | None:
    """The SQLite file MLFLOW_TRACKING_URI names instead of the store's own, when it does."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///"))
    return None


def refuse_unsafe_output(
    out: Path | None,
    inputs: Mapping[str, Path | None],
    *,
    store: Path | None = None,
    kind: Literal["folder", "file"] = "folder",
    writes: Iterable[Path] = (),
    out_option: str = "--out",
) -> None:
    """Refuse an output place that would destroy or mix with an input, before anything is read.

    The one output edge of every writing command. `inputs` names each input by its
    option (`--data`, `--table`, `--spec`, `--decisions`, `--risk-list`, `--key-file`,
    `--config`, `--in`). `out` (a folder, or a file with `kind="file"`) must not be,
    contain or lie inside any input nor the model `store` (its folder holds mlflow.db,
    the artifacts and the audit log): a replaced output would take them with it. The
    store, which the command writes too, must not be, contain or lie inside an input.
    Paths are compared after resolving links, and `out` itself must not be a link (a
    write through it lands elsewhere). `writes` are files a command writes in place
    rather than in a staged folder (feedback's logs, validate's report): none may be a
    link or an input. `out_option` is how the command names `out` (demo: `--runs`).
    Checks paths only; reads and writes nothing.

    Raises:
        OutputExistsError: naming the place and why it is refused.
    """
    places = _input_places(inputs)
    if store is not None:
        _refuse_overlap(Path(store), "--store", places)
        places += _input_places({"--store": store})
    if out is not None:
        out = Path(out)
        _refuse_link(out, f"{out_option} {out}")
        _refuse_overlap(out, out_option, places)
        if kind == "folder" and out.exists() and not out.is_dir():
            raise OutputExistsError(
                f"{out_option} {out} is an existing file, not a folder; choose another {out_option}"
            )
        if kind == "file" and out.is_dir():
            raise OutputExistsError(
                f"{out_option} {out} is an existing folder, not a file; choose another {out_option}"
            )
    for written in writes:
        _refuse_link(Path(written), str(written))
        for flag, path, _ in places:
            if Path(written).resolve() == path.resolve():
                raise OutputExistsError(
                    f"{written} is the {flag} input and also what this command writes; "
                    f"give {flag} another file"
                )


def _input_places(inputs: Mapping[str, Path | None]) -> list[tuple[str, Path, bool]]:
    """(option, path, is a folder) for every input given; the store's database too."""
    places: list[tuple[str, Path, bool]] = []
    for flag, given in inputs.items():
        if given is None:
            continue
        path = Path(given)
        places.append((flag, path, flag in _FOLDER_INPUTS or path.is_dir()))
        if flag == "--store" and (database := _store_database(path)) is not None:
            places.append(("MLFLOW_TRACKING_URI", database, False))
    return places


def _refuse_overlap(place: Path, name: str, places: list[tuple[str, Path, bool]]) -> None:
    """Refuse `place` when it is, contains or lies inside one of `places` (links resolved)."""
    resolved = place.resolve()
    for flag, path, is_folder in places:
        where = path.resolve()
        noun = "folder" if is_folder else "file"
        if resolved == where:
            why = f"is the {flag} {noun}"
        elif resolved.is_relative_to(where):
            why = f"lies inside the {flag} {noun} {path}"
        elif where.is_relative_to(resolved):
            why = f"contains the {flag} {noun} {path}"
        else:
            continue
        raise OutputExistsError(
            f"{name} {place} {why}: inputs and the model store stay untouched; "
            f"choose another {name}"
        )


def _refuse_link(path: Path, name: str) -> None:
    if path.is_symlink():
        raise OutputExistsError(
            f"{name} is a symbolic link (to {os.readlink(path)}): tillit never writes through "
            "a link, which could replace the file it points to; give the real path"
        )


def refuse_existing_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier run's outputs unless told to; touches nothing."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{out} already holds an earlier run's outputs; choose another --out or pass --overwrite"
        )


def refuse_unlisted_files(out: Path, names: Iterable[str], overwrite: bool) -> None:
    """With `overwrite`, refuse when `out` holds one of `names` that no earlier manifest lists.

    A command whose files have fixed names (simulate's contract tables) would replace a
    real export's files of the same names; only files its own earlier run listed may go.
    """
    out = Path(out)
    if not overwrite or not out.is_dir() or out.is_symlink():
        return
    present = {path.name for path in out.iterdir()} & set(names)
    unlisted = sorted(present - manifest_outputs(out))
    if unlisted:
        raise OutputExistsError(
            f"--out {out} holds {', '.join(unlisted)}, which no earlier tillit run's "
            "manifest.json lists (a real export?); tillit replaces only what it wrote "
            "there: move them or choose another --out"
        )


def refuse_earlier_outputs(out: Path, names: Iterable[str], overwrite: bool) -> None:
    """The `--overwrite` rule of a folder output, asked before any reading or training.

    `staged_output` and its publishing ask the same, but only once the work is done:
    a re-run refused there has cost the whole run. `names` are every file the command
    may write into `out`. Touches nothing.
    """
    refuse_existing_output(out, overwrite)
    refuse_unlisted_files(out, names, overwrite)


def manifest_outputs(folder: Path) -> set[str]:
    """The files an earlier run's `manifest.json` in `folder` lists (and the manifest itself)."""
    return listed_outputs(Path(folder) / MANIFEST)


def listed_outputs(path: Path) -> set[str]:
    """The file names the manifest at `path` lists under `outputs`, and its own name.

    Only plain names count: a manifest is a file in a folder anyone may edit, and a
    listed `../data/invoices.parquet` must not let `--overwrite` reach outside.
    """
    path = Path(path)
    if not path.is_file() or path.is_symlink():
        return set()
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return set()
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    if not isinstance(outputs, dict):
        return set()
    names = {name for name in outputs if isinstance(name, str)} | {path.name}
    return {name for name in names if name == Path(name).name and name not in ("", ".", "..")}


def file_manifest(out: Path) -> Path:
    """Where a command whose output is a file lists what it wrote: `<name>.manifest.json`
    beside `out` (a folder's run keeps `manifest.json` inside the folder instead).

    Named after the whole file name: `t.csv` and `t.parquet` are two outputs with two
    manifests, so a run into one never removes the other.
    """
    out = Path(out)
    return out.with_name(f"{out.name}.{MANIFEST}")


def _stem_manifest(out: Path) -> Path:
    """Where tillit before 2026-12-07 listed a file output: `<stem>.manifest.json`, shared by
    every output of that stem. Read only to let `--overwrite` replace a file it lists
    that this run writes again; nothing is ever removed on its word."""
    out = Path(out)
    return out.with_name(f"{out.stem}.{MANIFEST}")


def refuse_existing_files(
    out: Path, files: Iterable[Path], overwrite: bool, out_option: str = "--out"
) -> None:
    """The `--overwrite` rule of a command whose output is a file and its side files.

    Without `overwrite`, refuse when one of `files` (or the manifest beside `out`) is
    there already; with it, refuse when one is there that the earlier run's manifest
    does not list: as for a folder, tillit replaces only what it wrote. Touches nothing.
    """
    manifest = file_manifest(out)
    present = [path for path in (*map(Path, files), manifest) if path.exists() or path.is_symlink()]
    if not present:
        return
    for path in present:
        _refuse_link(path, str(path))
    names = ", ".join(sorted({path.name for path in present}))
    if not overwrite:
        raise OutputExistsError(
            f"{Path(out).parent} already holds {names} (an earlier run's outputs); "
            f"choose another {out_option} or pass --overwrite"
        )
    listed = listed_outputs(manifest) | listed_outputs(_stem_manifest(out))
    unlisted = sorted({path.name for path in present} - listed)
    if unlisted:
        raise OutputExistsError(
            f"{Path(out).parent} holds {', '.join(unlisted)}, which no earlier tillit run's "
            f"{manifest.name} lists; tillit replaces only what it wrote there: move them or "
            f"choose another {out_option}"
        )


def write_file_manifest(out: Path, command: str, written: Iterable[Path]) -> Path:
    """List the files a run wrote beside `out` (what a later `--overwrite` may replace).

    A file the earlier run listed that this run did not write again is removed, so no
    stale side file is taken for this run's (the same rule as a folder's `_publish`).
    """
    from tillit.data.io import file_sha256, write_json

    manifest = file_manifest(out)
    written = [Path(path) for path in written]
    fresh = {path.name for path in written}
    for name in sorted(listed_outputs(manifest) - fresh - {manifest.name}):
        old = manifest.parent / name
        if old.is_symlink() or old.is_file():
            old.unlink()
    outputs = {path.name: file_sha256(path) for path in written}
    return write_json({"command": command, "outputs": outputs}, manifest)


@contextmanager
def staged_files(out: Path, command: str) -> Iterator[Callable[[Path], Path]]:
    """Write a file output and its side files as a unit: all of them, then the manifest.

    Yields `stage(final) -> scratch path`: the run writes each file to the hidden sibling
    `stage` returns (same suffix, so the format is the same). Only when the block ends
    without an error are the written ones renamed into place and the manifest beside
    `out` written (last), removing what an earlier manifest listed that this run did not
    write again. A failed run removes its scratch files and leaves every earlier output
    and manifest as they were: nothing is pruned on a failure.
    """
    staged: dict[Path, Path] = {}

    def stage(final: Path) -> Path:
        final = Path(final)
        scratch = final.with_name(f".{final.stem}.partial{final.suffix}")
        if scratch.is_symlink() or scratch.is_file():
            scratch.unlink()  # a planted link would be written through
        staged[scratch] = final
        return scratch

    try:
        yield stage
    except BaseException:
        for scratch in staged:
            scratch.unlink(missing_ok=True)
        raise
    written = [final for scratch, final in staged.items() if scratch.is_file()]
    for scratch, final in staged.items():
        if scratch.is_file():
            scratch.replace(final)
    write_file_manifest(out, command, written)


def _publish(work: Path, out: Path) -> None:
    """Put a finished run's files in `out`, removing only what an earlier run's manifest lists.

    Files in `out` that no manifest lists (an operator's notes, a store someone put
    there) are kept; the new manifest lists exactly this run's files.
    """
    if not out.exists():
        work.replace(out)
        return
    fresh = {path.name for path in work.iterdir()}
    listed = manifest_outputs(out)
    # Every refusal before the first change: `out` is either published or untouched.
    for name in sorted(fresh):
        target = out / name
        if target.is_dir() and not target.is_symlink():
            raise OutputExistsError(
                f"{target} is a folder where this run writes a file; it was kept and the "
                f"run's outputs are in {work}"
            )
    unlisted = sorted(
        name for name in fresh - listed if (out / name).is_symlink() or (out / name).exists()
    )
    if unlisted:
        raise OutputExistsError(
            f"--out {out} holds {', '.join(unlisted)}, which no earlier tillit run's "
            f"{MANIFEST} lists; tillit replaces only what it wrote there: nothing in {out} "
            f"was changed and the run's outputs are in {work}"
        )
    for name in sorted(listed - fresh):
        old = out / name
        if old.is_symlink() or old.is_file():
            old.unlink()
    for name in sorted(fresh):
        (work / name).replace(out / name)
    work.rmdir()


@contextmanager
def staged_output(out: Path, overwrite: bool) -> Iterator[Path]:
    """A scratch folder whose files are published into `out` only when the run succeeds.

    A refused or failed run leaves an earlier run's outputs as they were. With
    `overwrite`, the earlier run's files (as its manifest lists them) are replaced and
    anything else in `out` is kept. A run stopped by the quarantine limit still leaves
    its quarantine records in `out` when `out` held nothing before, so the reason can
    be read.
    """
    out = Path(out)
    _refuse_link(out, f"--out {out}")
    refuse_existing_output(out, overwrite)
    work = out.with_name(f".{out.name}.partial")
    if work.is_symlink():
        work.unlink()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    except QuarantineLimitError:
        if not out.exists() or not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
            work.replace(out)
        else:
            shutil.rmtree(work, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _publish(work, out)


def record_run(store: Path, command: str, **fields: Unpack[RecordFields]) -> AuditRecord:
    """Append one record to the audit log beside the model registry.

    A run that concerns a model also keeps the record's hash on that model's
    MLflow run, so `tillit log` can tell a log that was cut short. Its MLflow store is
    opened first: a store MLflow refuses fails the run before the log gains a record.
    """
    from tillit.ops import tracking
    from tillit.ops.auditlog import append_record

    run_id = fields.get("run_id")
    client = tracking.connect(store) if run_id is not None else None
    record = append_record(store / AUDIT_LOG, command=command, **fields)
    if client is not None and run_id is not None:
        tracking.tag_audit_record(client, run_id, record.seq, record.record_hash)
    return record


def record_training(
    store: Path,
    ref: ModelRef,
    config_hash: str,
    data_fingerprint: str,
    counts: Mapping[str, int],
    cards: Iterable[Path],
    details: Mapping[str, object],
) -> AuditRecord:
    """The audit record of a registered model, whatever the stream: what it learned from,
    the hashes of its model card files and of every registered file (ops/integrity.py)."""
    from tillit.data.io import file_sha256
    from tillit.ops.integrity import ARTIFACT_HASHES_DETAIL, registered_hashes

    return record_run(
        store,
        "train",
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        config_hash=config_hash,
        data_fingerprint=data_fingerprint,
        counts=dict(counts),
        output_hashes={path.name: file_sha256(path) for path in cards},
        details={ARTIFACT_HASHES_DETAIL: registered_hashes(store, ref), **details},
    )


def run_facts(
    config: TillitConfig, timings: Mapping[str, float], outputs: Mapping[str, Path]
) -> dict[str, Any]:
    """The end of every scoring manifest: the resolved config, each stage's seconds, and the
    SHA-256 of each output (by name; the audit record keeps the same map)."""
    from tillit.data.io import file_sha256

    return {
        "config": config.resolved(),
        "timings_seconds": dict(timings),
        "outputs": {name: file_sha256(path) for name, path in sorted(outputs.items())},
    }


def write_manifest_and_record(
    store: Path,
    command: str,
    folder: Path,
    manifest: dict[str, Any],
    ref: ModelRef,
    config_hash: str,
    data_fingerprint: str,
    details: Mapping[str, object],
) -> None:
    """Write `manifest.json` into `folder` and append the run's audit record.

    The record keeps the hash of every output the manifest lists and of the
    manifest itself, so a later check finds any file changed after the run.
    """
    from tillit.data.io import file_sha256, write_json
    from tillit.features import wait_for_closes_aside

    wait_for_closes_aside()  # a feature stage's DuckDB that failed to close fails the run
    path = write_json(manifest, folder / MANIFEST)
    record_run(
        store,
        command,
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        config_hash=config_hash,
        data_fingerprint=data_fingerprint,
        counts=manifest["counts"],
        output_hashes={**manifest["outputs"], MANIFEST: file_sha256(path)},
        details=dict(details),
    )


def record_promotion(
    store: Path,
    decision: PromotionDecision,
    config_hash: str,
    force: bool,
    reason: str | None,
    **more_details: object,
) -> None:
    """The audit record of a promotion decision, promoted or refused, for any registered model."""
    record_run(
        store,
        "promote",
        model_name=decision.challenger.name,
        model_version=decision.challenger.version,
        run_id=decision.challenger.run_id,
        config_hash=config_hash,
        details={
            "promoted": decision.promoted,
            "message": decision.message,
            "forced": force,
            "reason": reason,
            "previous_champion": decision.champion.version if decision.champion else None,
            **more_details,
        },
    )


def publish_model_card(card: ModelCardData, ref: ModelRef, store: Path) -> list[Path]:
    """Render a model card, write it beside the registry (`<store>/model_cards/`), log it to its run."""
    from tillit.ops import tracking
    from tillit.review.modelcard import render_model_card

    markdown, html = render_model_card(card)
    folder = store / "model_cards"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{ref.name}-v{ref.version}"
    paths = [folder / f"{stem}.md", folder / f"{stem}.html"]
    paths[0].write_text(markdown, "utf-8")
    paths[1].write_text(html, "utf-8")
    client = tracking.connect(store)
    client.log_text(ref.run_id, markdown, "model_card/model_card.md")
    client.log_text(ref.run_id, html, "model_card/model_card.html")
    return paths
