"""`tillit pseudonymise`: an export folder copied with people's identifiers replaced by keyed hashes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tillit.config import TillitConfig
from tillit.data.io import read_frame, write_frame
from tillit.errors import TillitError
from tillit.jobs.common import refuse_unsafe_output


@dataclass(frozen=True)
class PseudonymiseOutcome:
    """How many files and rows were pseudonymised."""

    files: int
    rows: int


def run_pseudonymise(
    in_dir: Path, out_dir: Path, key_file: Path, new_key: bool, config: TillitConfig
) -> PseudonymiseOutcome:
    """Pseudonymise every table file of an export folder into a new folder, same formats.

    Every `.csv` and `.parquet` file is read (not only contract tables: an export
    may carry more), so identifiers cannot slip through in a table tillit does not use.
    """
    import os

    from tillit.data.pseudonymise import generate_key, load_key, pseudonymise_tables

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise TillitError(f"input folder {in_dir} does not exist")
    files = sorted(p for p in in_dir.iterdir() if p.suffix in (".csv", ".parquet") and p.is_file())
    refuse_unsafe_output(
        out_dir,
        {"--in": in_dir, "--key-file": key_file},
        writes=[out_dir / path.name for path in files],
    )
    if new_key:
        if key_file.exists():
            raise TillitError(
                f"{key_file} exists: refusing to replace a key (old pseudonyms would no longer link)"
            )
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(generate_key())
    key = load_key(key_file)
    tables = {path.stem: read_frame(path) for path in files}
    cleaned = pseudonymise_tables(tables, key, config.pseudonymise)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        # tillit's own input, not a sheet for people: neutralising would change ids.
        write_frame(cleaned[path.stem], out_dir / path.name, for_spreadsheet=False)
    return PseudonymiseOutcome(files=len(files), rows=int(sum(len(t) for t in cleaned.values())))
