"""What every job shares: reading and validating a contract folder, staged outputs, the audit log."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

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
__all__ = ["AUDIT_LOG", "TRUTH_FILE"]


class OutputExistsError(TillitError):
    """A run would overwrite an earlier run's outputs."""


@dataclass(frozen=True)
class LoadedData:
    """A contract folder as read (untyped), as validated, and its fingerprint."""

    raw: dict[str, pd.DataFrame]
    validation: ValidationResult
    fingerprint: str


def load_data(
    data_dir: Path, config: TillitConfig, quarantine_dir: Path | None = None
) -> LoadedData:
    """Read and validate a contract folder; stop when it is unusable.

    The quarantine is written to `quarantine_dir` before the limit is checked,
    so a refused run still leaves the record of why.
    """
    raw = read_raw_tables(data_dir, config.input)
    validation = validate_tables(raw)
    if quarantine_dir is not None and not validation.quarantine.empty:
        write_frame(validation.quarantine, quarantine_dir / "quarantine.parquet")
    check_quarantine_limit(validation, config.validation)
    return LoadedData(raw=raw, validation=validation, fingerprint=data_fingerprint(data_dir))


def read_truth(data_dir: Path) -> pd.DataFrame | None:
    """Simulated ground truth, for evaluation only: scoring never reads it."""
    path = Path(data_dir) / TRUTH_FILE
    return read_frame(path) if path.is_file() else None


def refuse_unsafe_output(out: Path, data_dir: Path | None, kind: str = "folder") -> None:
    """Refuse an output place that would destroy or mix with the input, before anything is read.

    `out` must not be the data folder, lie inside it or contain it (a replaced output
    folder would take the input with it), and an output folder must not be a file.

    Raises:
        OutputExistsError: naming `--out` and why it is refused.
    """
    out_path = Path(out).resolve()
    if data_dir is not None:
        data_path = Path(data_dir).resolve()
        if out_path == data_path:
            why = "is the --data folder"
        elif out_path.is_relative_to(data_path):
            why = f"lies inside the --data folder {data_dir}"
        elif data_path.is_relative_to(out_path):
            why = f"contains the --data folder {data_dir}"
        else:
            why = ""
        if why:
            raise OutputExistsError(
                f"--out {out} {why}: the input must stay untouched; choose another --out"
            )
    if kind == "folder" and Path(out).exists() and not Path(out).is_dir():
        raise OutputExistsError(
            f"--out {out} is an existing file, not a folder; choose another --out"
        )


def refuse_existing_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier run's outputs unless told to; touches nothing."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{out} already holds an earlier run's outputs; choose another --out or pass --overwrite"
        )


@contextmanager
def staged_output(out: Path, overwrite: bool) -> Iterator[Path]:
    """A scratch folder that replaces `out` only when the run succeeds.

    A refused or failed run leaves an earlier run's outputs as they were. A run
    stopped by the quarantine limit still leaves its quarantine records in `out`
    when `out` held nothing before, so the reason can be read.
    """
    out = Path(out)
    refuse_existing_output(out, overwrite)
    work = out.with_name(f".{out.name}.partial")
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
    if out.exists():
        shutil.rmtree(out)
    work.replace(out)


def record_run(store: Path, command: str, **fields: Unpack[RecordFields]) -> AuditRecord:
    """Append one record to the audit log beside the model registry.

    A run that concerns a model also keeps the record's hash on that model's
    MLflow run, so `tillit log` can tell a log that was cut short.
    """
    from tillit.ops.auditlog import append_record

    record = append_record(store / AUDIT_LOG, command=command, **fields)
    run_id = fields.get("run_id")
    if run_id is not None:
        from tillit.ops import tracking

        tracking.tag_audit_record(tracking.connect(store), run_id, record.seq, record.record_hash)
    return record


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

    path = write_json(manifest, folder / "manifest.json")
    record_run(
        store,
        command,
        model_name=ref.name,
        model_version=ref.version,
        run_id=ref.run_id,
        config_hash=config_hash,
        data_fingerprint=data_fingerprint,
        counts=manifest["counts"],
        output_hashes={**manifest["outputs"], "manifest.json": file_sha256(path)},
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
