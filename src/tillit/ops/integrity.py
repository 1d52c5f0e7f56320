"""Model integrity: every file of a registered model version is hashed at registration and checked before use.

A registered version is a folder of files MLflow wrote (``MLmodel``, the model
code ``pyfunc_model.py``, the pickle under ``artifacts/``, requirements and
environment files). Any of them can run code when the model is loaded, and
whoever can write the store can change them. So:

- at registration the SHA-256 of every file is kept twice: as one JSON
  model-version tag (``tillit.artifact_sha256``, relative path -> hash) and in
  the version's ``train`` record of the audit log, which the audit key signs;
- before a version is used (scoring, promotion, explanation) its folder is
  copied file by file into a private temporary folder, each copy hashed as it
  is read, and the set of files and every hash compared with the tag and with
  the signed train record. Only the verified copy is loaded, so a file swapped
  after the check is never the one read. Nothing from the store is unpickled or
  imported before that: the pickle is read with joblib from the copy, never
  through ``mlflow.pyfunc.load_model`` (which would import the stored code).

A version registered before hashes were kept cannot be verified and is refused;
retraining registers a verifiable one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from tillit.errors import ModelUnavailableError, TillitError

if TYPE_CHECKING:
    from tillit.ops.tracking import ModelRef

ARTIFACT_HASHES_TAG = "tillit.artifact_sha256"
# The key in the train record's `details` that holds the same map.
ARTIFACT_HASHES_DETAIL = "model_artifact_sha256"
MLFLOW_META = "registered_model_meta"


def model_folder(client: Any, name: str, version: str) -> Path:
    """The folder on disk that holds a registered version's files (nothing is downloaded)."""
    from mlflow.exceptions import MlflowException

    try:
        source = str(client.get_model_version(name, version).source)
        if source.startswith("models:/"):
            location = str(
                client.get_logged_model(source.removeprefix("models:/")).artifact_location
            )
        else:
            location = source
    except MlflowException as exc:
        raise ModelUnavailableError(f"{name} version {version}: {exc.message}") from None
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        raise ModelUnavailableError(
            f"{name} version {version} is stored at {location}, not on this disk: "
            "tillit verifies model files before loading and can only do that on local files"
        )
    return Path(url2pathname(parsed.path)) if parsed.scheme else Path(location)


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every file under ``folder`` by relative POSIX path; a link or odd entry is refused."""
    if folder.is_symlink():
        raise ModelUnavailableError(f"the model's folder {folder} is a symbolic link: refused")
    if not folder.is_dir():
        raise ModelUnavailableError(f"the model's folder {folder} is missing")
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for entry in [*dirs, *sorted(names)]:
            path = Path(root) / entry
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                raise ModelUnavailableError(
                    f"model file {relative} in {folder} is a symbolic link: refused"
                )
            if entry in names:
                if not path.is_file():
                    raise ModelUnavailableError(f"model file {relative} in {folder} is not a file")
                yield relative, path


def hash_folder(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    hashes: dict[str, str] = {}
    for relative, path in _files(folder):
        hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def record_artifact_hashes(client: Any, name: str, version: str) -> dict[str, str]:
    """Hash a newly registered version's files and keep the map as its version tag.

    Called right after registration, before any alias points at the version; the
    same map goes into the train record (``ARTIFACT_HASHES_DETAIL``).
    """
    hashes = hash_folder(model_folder(client, name, version))
    text = json.dumps(hashes, sort_keys=True, separators=(",", ":"))
    client.set_model_version_tag(name, version, ARTIFACT_HASHES_TAG, text)
    return hashes


def registered_hashes(store: Path, ref: ModelRef) -> dict[str, str]:
    """The map kept on a version at registration, for its train record."""
    from tillit.ops.tracking import connect

    hashes = recorded_artifact_hashes(connect(store), ref.name, ref.version)
    if hashes is None:
        raise ModelUnavailableError(f"{ref.name} version {ref.version} has no file hashes")
    return hashes


def recorded_artifact_hashes(client: Any, name: str, version: str) -> dict[str, str] | None:
    """The map kept as the version's tag (None: registered before tillit kept one)."""
    text = client.get_model_version(name, version).tags.get(ARTIFACT_HASHES_TAG)
    if text is None:
        return None
    try:
        hashes = json.loads(text)
    except ValueError:
        hashes = None
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise ModelUnavailableError(
            f"{name} version {version}: its {ARTIFACT_HASHES_TAG} tag is not a map of hashes"
        )
    return hashes


def _signed_hashes(store: Path, ref: ModelRef) -> dict[str, str]:
    """The map in the version's train record, after checking the record's HMAC."""
    from tillit.ops.auditlog import AUDIT_LOG, audit_key, is_signed, latest_record

    log = Path(store) / AUDIT_LOG
    record = latest_record(
        log, command="train", model_name=ref.name, model_version=ref.version, run_id=ref.run_id
    )
    details = record.get("details") if record is not None else None
    hashes = details.get(ARTIFACT_HASHES_DETAIL) if isinstance(details, Mapping) else None
    if record is None or not isinstance(hashes, Mapping):
        raise ModelUnavailableError(
            f"{ref.name} version {ref.version} has no train record with its file hashes in "
            f"the audit log {log}: the version cannot be verified, so it is not loaded "
            "(the log was cut or replaced, or the version was not registered by tillit train)"
        )
    try:
        key = audit_key(log)
    except TillitError as exc:
        raise ModelUnavailableError(f"{ref.name} version {ref.version}: {exc}") from None
    if not is_signed(record, key):
        raise ModelUnavailableError(
            f"{ref.name} version {ref.version}: its train record (seq {record.get('seq')}) in "
            f"{log} fails its HMAC: the record was edited, so the version is not loaded"
        )
    return {str(k): str(v) for k, v in hashes.items()}


def expected_hashes(client: Any, store: Path, ref: ModelRef) -> dict[str, str]:
    """The file hashes a version must have: its tag, equal to its signed train record.

    Raises:
        ModelUnavailableError: no hashes were kept (an older store), or the tag and the
            signed record disagree.
    """
    tagged = recorded_artifact_hashes(client, ref.name, ref.version)
    if tagged is None:
        raise ModelUnavailableError(
            f"{ref.name} version {ref.version} was registered without the hashes of its "
            "files (by an older tillit): it cannot be verified, so it is not loaded; "
            "retrain with `tillit train` (and promote the new version)"
        )
    signed = _signed_hashes(store, ref)
    if tagged != signed:
        changed = sorted(
            path for path in tagged.keys() | signed.keys() if tagged.get(path) != signed.get(path)
        )
        raise ModelUnavailableError(
            f"{ref.name} version {ref.version}: the file hashes in its MLflow tag differ from "
            f"its signed train record ({', '.join(changed) or 'the map'}): the tag was edited; "
            "not loaded"
        )
    return signed


def _is_mlflow_meta(path: Path, ref: ModelRef) -> bool:
    """Whether a file is the `registered_model_meta` MLflow writes into a local model on load.

    `mlflow.pyfunc.load_model("models:/...")` on a local store writes this two-line
    YAML into the version's own folder; it is data MLflow reads, never code, so it is
    allowed when it says exactly this version, and ignored.
    """
    import yaml

    try:
        meta = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    # YAML reads `model_version: 1` as a number: compare as text.
    if not isinstance(meta, dict):
        return False
    return {str(k): str(v) for k, v in meta.items()} == {
        "model_name": ref.name,
        "model_version": str(ref.version),
    }


def _compare(
    expected: Mapping[str, str], found: Mapping[str, str], ref: ModelRef, folder: Path
) -> None:
    extra_meta = MLFLOW_META in found and MLFLOW_META not in expected
    if extra_meta and _is_mlflow_meta(folder / MLFLOW_META, ref):
        found = {path: digest for path, digest in found.items() if path != MLFLOW_META}
    problems = [
        f"{path} {'is missing' if path not in found else 'was changed'}"
        for path in sorted(expected)
        if found.get(path) != expected[path]
    ] + [f"{path} was added" for path in sorted(found.keys() - expected.keys())]
    if problems:
        raise ModelUnavailableError(
            f"{ref.name} version {ref.version} failed verification: {'; '.join(problems)} "
            f"(in {folder}) since it was registered; nothing of it was loaded. Restore the "
            "store from a backup or retrain"
        )


def verify_model(client: Any, store: Path, ref: ModelRef) -> None:
    """Check a version's files in place without loading anything (for promotion)."""
    folder = model_folder(client, ref.name, ref.version)
    _compare(expected_hashes(client, store, ref), hash_folder(folder), ref, folder)


@contextmanager
def verified_copy(client: Any, store: Path, ref: ModelRef) -> Iterator[Path]:
    """A private copy of a version's files, each hashed as copied and checked; removed after use.

    Raises:
        ModelUnavailableError: naming every file that is missing, changed or added.
    """
    expected = expected_hashes(client, store, ref)
    folder = model_folder(client, ref.name, ref.version)
    with tempfile.TemporaryDirectory(prefix="tillit-model-") as scratch:
        copy = Path(scratch)
        found: dict[str, str] = {}
        for relative, path in _files(folder):
            data = path.read_bytes()
            found[relative] = hashlib.sha256(data).hexdigest()
            target = copy / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _compare(expected, found, ref, folder)
        yield copy


def load_verified_pickle(client: Any, store: Path, ref: ModelRef, artifact: str) -> Any:
    """The object pickled in a version's ``artifacts/<artifact>``, unpickled only after verification."""
    import joblib

    with verified_copy(client, store, ref) as copy:
        path = copy / "artifacts" / artifact
        if not path.is_file():
            raise ModelUnavailableError(
                f"{ref.name} version {ref.version} has no artifacts/{artifact}"
            )
        return joblib.load(path)
