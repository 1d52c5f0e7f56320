"""`--out` can never destroy or mix with the input: refused before anything is read or written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.cli import refused, tillit
from tests.conftest import tiny_tables
from tillit.data.io import write_tables


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "export" / "data"
    write_tables(tiny_tables(), folder)
    return folder


def _score(data: Path, out: Path, cwd: Path, *extra: str):
    return tillit(
        "score", "--data", data, "--period", "2025-01", "--out", out, "--store", cwd / "m",
        *extra, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize("overwrite", [False, True])
def test_score_refuses_out_that_is_the_data_folder(data, tmp_path, overwrite):
    before = _folder_hash(data)
    extra = ("--overwrite",) if overwrite else ()
    refused(_score(data, data, tmp_path, *extra), "is the --data folder", "choose another --out")
    assert _folder_hash(data) == before


def test_score_refuses_out_inside_the_data_folder(data, tmp_path):
    before = _folder_hash(data)
    refused(_score(data, data / "score", tmp_path, "--overwrite"), "lies inside the --data folder")
    assert _folder_hash(data) == before and not (data / "score").exists()


def test_score_refuses_out_that_contains_the_data_folder(data, tmp_path):
    before = _folder_hash(data)
    refused(_score(data, data.parent, tmp_path, "--overwrite"), "contains the --data folder")
    assert _folder_hash(data) == before


def test_score_refuses_out_that_is_an_existing_file(data, tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    refused(_score(data, target, tmp_path, "--overwrite"), "is an existing file")
    assert target.read_text() == "keep me"


def test_validate_refuses_the_same_places(data, tmp_path):
    before = _folder_hash(data)
    refused(tillit("validate", "--data", data, "--out", data, cwd=tmp_path), "is the --data folder")
    refused(
        tillit("validate", "--data", data, "--out", data / "v", cwd=tmp_path),
        "lies inside the --data folder",
    )
    target = tmp_path / "file"
    target.write_text("x")
    refused(tillit("validate", "--data", data, "--out", target, cwd=tmp_path), "existing file")
    assert _folder_hash(data) == before


def test_features_refuses_a_table_written_into_the_data_folder(data, tmp_path):
    before = _folder_hash(data)
    refused(
        tillit(
            "features", "--data", data, "--period", "2025-01", "--out", data / "f.parquet",
            cwd=tmp_path,
        ),
        "lies inside the --data folder",
    )  # fmt: skip
    assert _folder_hash(data) == before
