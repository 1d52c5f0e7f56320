"""`tillit pseudonymise`: an export folder copied with people's identifiers replaced by keyed hashes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tillit.config import TillitConfig
from tillit.data.contract import TABLES
from tillit.data.io import read_frame, write_frame
from tillit.errors import TillitError
from tillit.jobs.common import (
    MANIFEST,
    refuse_existing_output,
    refuse_unlisted_files,
    refuse_unsafe_output,
    staged_output,
)


@dataclass(frozen=True)
class PseudonymiseOutcome:
    """How many files and rows were pseudonymised, and what was removed beyond identifiers."""

    files: int
    rows: int
    notes: tuple[str, ...] = ()
    manifest: Path | None = None


def refuse_key_inside(key_file: Path, folders: dict[str, Path]) -> None:
    """Refuse a key file inside a data folder: it would travel with the data it protects.

    A key beside the pseudonymised copy lets anyone who receives the copy recompute
    every pseudonym from a list of personnummer; a key inside the export folder is
    copied along with it by whoever backs the export up.
    """
    key_path = Path(key_file).resolve()
    for option, folder in folders.items():
        if key_path.is_relative_to(Path(folder).resolve()):
            raise TillitError(
                f"--key-file {key_file} lies inside the {option} folder {folder}: keep the key "
                "outside every data folder (whoever holds both can undo the pseudonyms)"
            )


def run_pseudonymise(
    in_dir: Path,
    out_dir: Path,
    key_file: Path,
    new_key: bool,
    config: TillitConfig,
    overwrite: bool = False,
) -> PseudonymiseOutcome:
    """Pseudonymise the contract tables of an export folder into a new folder, same formats.

    Every `.csv` and `.parquet` file is read; tables and columns outside the data
    contract are not copied (said in the notes and the manifest), so a name or a
    note cannot slip through in a table tillit does not use.
    """

    from tillit.data.io import file_sha256, write_json
    from tillit.data.pseudonymise import load_key, pseudonymise_export
    from tillit.ops.keys import create_key_file

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise TillitError(f"input folder {in_dir} does not exist")
    refuse_key_inside(key_file, {"--in": in_dir, "--out": out_dir})
    files = sorted(p for p in in_dir.iterdir() if p.suffix in (".csv", ".parquet") and p.is_file())
    refuse_unsafe_output(
        out_dir,
        {"--in": in_dir, "--key-file": key_file},
        writes=[out_dir / path.name for path in files],
    )
    # Into a folder that holds another export, never over its tables: only with
    # `overwrite`, and only the files an earlier pseudonymise's manifest lists.
    refuse_existing_output(out_dir, overwrite)
    to_write = [path.name for path in files if path.stem in TABLES]
    refuse_unlisted_files(out_dir, [*to_write, MANIFEST], overwrite)
    if new_key:
        if key_file.exists():
            raise TillitError(
                f"{key_file} exists: refusing to replace a key (old pseudonyms would no longer link)"
            )
        create_key_file(key_file)
    key = load_key(key_file)
    tables = {path.stem: read_frame(path) for path in files}
    export = pseudonymise_export(tables, key, config.pseudonymise)
    outputs: dict[str, str] = {}
    notes = tuple(export.notes())
    # Staged: the folder gets this run's tables and manifest only when all are written,
    # and a table an earlier run listed that this run does not write (last month's
    # hospital_stays.csv) goes, so nothing stale is read as this month's.
    with staged_output(out_dir, overwrite) as work:
        for path in files:
            if path.stem in export.tables:
                written = write_frame(
                    # tillit's own input, not a sheet for people: neutralising would change ids.
                    export.tables[path.stem],
                    work / path.name,
                    for_spreadsheet=False,
                )
                outputs[path.name] = file_sha256(written)
        write_json(
            {
                "command": "pseudonymise",
                "notes": list(notes),
                "dropped_tables": list(export.dropped_tables),
                "dropped_columns": list(export.dropped_columns),
                "masked_cells": export.masked_cells,
                "org_numbers_pseudonymised": export.org_numbers_pseudonymised,
                "outputs": outputs,
            },
            work / MANIFEST,
        )
    manifest = out_dir / MANIFEST
    return PseudonymiseOutcome(
        files=len(outputs),
        rows=int(sum(len(t) for t in export.tables.values())),
        notes=notes,
        manifest=manifest,
    )
