"""`tillit features`: one month's feature table, its findings and its quarantine, as files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tillit.config import TillitConfig
from tillit.data.io import write_frame
from tillit.errors import NothingToScoreError
from tillit.jobs.common import (
    load_data,
    refuse_existing_files,
    refuse_unsafe_output,
    staged_files,
)

# Written beside the feature table as `<name>_<part>.parquet`.
_SIDE_FILES = ("validation_quarantine", "findings", "quarantine")


@dataclass(frozen=True)
class FeaturesOutcome:
    """What `run_features` wrote and counted."""

    invoices: int
    findings: int
    quarantined: int
    rows_quarantined_by_validation: int
    seconds: float
    validation_quarantine_file: Path | None


def feature_files(out: Path) -> list[Path]:
    """The feature table `out` and the side files written beside it."""
    out = Path(out)
    stem = out.with_suffix("")
    return [out, *(stem.parent / f"{stem.name}_{part}.parquet" for part in _SIDE_FILES)]


def run_features(
    data_dir: Path, period: str, out: Path, config: TillitConfig, overwrite: bool = False
) -> FeaturesOutcome:
    """Build and write one month's feature table, its findings and its quarantine.

    Rows the contract check quarantined are written beside it as
    `<name>_validation_quarantine.parquet`, so nothing is dropped without a record.
    An earlier run's files there are replaced only with `overwrite`, and only as the
    manifest beside them (`<name>.parquet.manifest.json`) lists them.
    """
    from tillit.features import build_features

    began = time.perf_counter()
    out = Path(out)
    table, validation_quarantine, findings, quarantine = feature_files(out)
    refuse_unsafe_output(
        out,
        {"--data": data_dir},
        kind="file",
        writes=[table, validation_quarantine, findings, quarantine],
    )
    refuse_existing_files(out, feature_files(out), overwrite)
    loaded = load_data(data_dir, config)
    rows_quarantined = len(loaded.validation.quarantine)
    if not (loaded.validation.tables["invoices"]["period"] == period).any():
        # Nothing written, nothing pruned: a mistyped --period keeps the earlier table.
        why = f" ({rows_quarantined:,} rows broke the contract: see `tillit validate`)"
        raise NothingToScoreError(
            f"period {period} has no valid invoices in {data_dir}"
            + (why if rows_quarantined else "")
        )
    feature_set = build_features(loaded.validation.tables, period, config.features)
    validation_quarantine_file = None
    # All files, then the manifest: a failed build leaves an earlier run's files as they were.
    with staged_files(out, "features") as stage:
        if rows_quarantined:
            write_frame(loaded.validation.quarantine, stage(validation_quarantine))
            validation_quarantine_file = validation_quarantine
        write_frame(feature_set.features, stage(table))
        write_frame(feature_set.findings, stage(findings))
        write_frame(feature_set.quarantine, stage(quarantine))
    return FeaturesOutcome(
        invoices=len(feature_set.features),
        findings=len(feature_set.findings),
        quarantined=len(feature_set.quarantine),
        rows_quarantined_by_validation=rows_quarantined,
        seconds=round(time.perf_counter() - began, 2),
        validation_quarantine_file=validation_quarantine_file,
    )
