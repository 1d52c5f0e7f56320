"""`tillit link`: providers and persons resolved across registers, written beside the data.

The provider stage (`tillit providers`, and the provider model in `tillit train`)
computes the same linkage in process (`linkage_for`); this command writes it out
for an auditor to open: every linked pair with the facts it shares and its match
probability, and every provider and person id with its resolved entity id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tillit.config import TillitConfig
from tillit.jobs.common import (
    MANIFEST,
    load_data,
    refuse_earlier_outputs,
    refuse_unsafe_output,
    staged_output,
)

if TYPE_CHECKING:
    from tillit.data.linkage import Linkage

LINK_FILES = ("provider_links", "person_links", "entities")
LINK_OUTPUTS = tuple(f"{name}{suffix}" for name in LINK_FILES for suffix in (".parquet", ".csv"))


def linkage_for(tables: Mapping[str, pd.DataFrame], config: TillitConfig) -> Linkage | None:
    """The linkage of a validated folder, or None when it has nothing to link (a v1.2 folder).

    Splink is imported only when there is something to link and `link.method` asks for it.
    """
    persons = tables.get("provider_persons")
    has_names = (
        persons is not None and "name_token" in persons and persons["name_token"].notna().any()
    )
    contacts = tables.get("provider_contacts")
    if not has_names and (contacts is None or contacts.empty):
        return None
    from tillit.data.linkage import link_registers

    return link_registers(tables, config.link)


@dataclass(frozen=True)
class LinkOutcome:
    """What `run_link` linked and wrote."""

    method: str
    provider_links: int
    person_links: int
    entities: int
    merged_records: int
    seconds: float
    out: Path


def run_link(
    data_dir: Path,
    out: Path,
    config: TillitConfig,
    overwrite: bool = False,
    store: Path | None = None,
) -> LinkOutcome:
    """Link the providers and persons of a contract folder; write the pairs and entities to `out`.

    Writes `provider_links`, `person_links` and `entities` (Parquet and CSV) and a
    manifest; never into or over the data folder.
    """
    from tillit.data.io import file_sha256, write_frame, write_json

    began = time.perf_counter()
    out = Path(out)
    refuse_unsafe_output(out, {"--data": data_dir}, store=store)
    # Before the linking, not after it.
    refuse_earlier_outputs(out, [*LINK_OUTPUTS, MANIFEST], overwrite)
    loaded = load_data(data_dir, config)
    linkage = linkage_for(loaded.validation.tables, config)
    if linkage is None:  # nothing to compare: every id is its own entity, no Splink needed
        from tillit.data.linkage import link_registers

        exact = config.link.model_copy(update={"method": "exact"})
        linkage = link_registers(loaded.validation.tables, exact)
    frames = {
        "provider_links": linkage.provider_links,
        "person_links": linkage.person_links,
        "entities": linkage.entities,
    }
    with staged_output(out, overwrite) as work:
        outputs = {}
        for name, frame in frames.items():
            for suffix in (".parquet", ".csv"):
                path = write_frame(frame, work / f"{name}{suffix}")
                outputs[path.name] = file_sha256(path)
        merged = int((linkage.entities["record_id"] != linkage.entities["entity_id"]).sum())
        write_json(
            {
                "command": "link",
                "data": str(data_dir),
                "method": linkage.method,
                "backend": config.link.backend if linkage.method == "splink" else None,
                "config": config.link.model_dump(mode="json"),
                "data_fingerprint": loaded.fingerprint,
                "counts": {name: len(frame) for name, frame in frames.items()},
                "outputs": outputs,
            },
            work / "manifest.json",
        )
    return LinkOutcome(
        method=linkage.method,
        provider_links=_pairs(linkage.provider_links, "provider_id", "linked_provider_id"),
        person_links=_pairs(linkage.person_links, "person_id", "linked_person_id"),
        entities=int(linkage.entities["entity_id"].nunique()),
        merged_records=merged,
        seconds=round(time.perf_counter() - began, 2),
        out=out,
    )


def _pairs(links: pd.DataFrame, left: str, right: str) -> int:
    """Distinct unordered pairs of ids (links are listed both ways, once per record pair)."""
    return len({tuple(sorted(p)) for p in zip(links[left], links[right], strict=True)})


__all__ = ["LINK_FILES", "LINK_OUTPUTS", "LinkOutcome", "linkage_for", "run_link"]
