"""Secret keys kept outside the data and the model store: created 0600, never replaced, never logged.

A key is raw bytes in a file (used exactly as stored) or, for a secrets manager,
hex in an environment variable. A key an attacker could guess defeats the HMAC it
feeds, so short or low-entropy keys (32 identical bytes, a repeated word) are refused.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tillit.core.keys import KEY_BYTES, key_weakness
from tillit.errors import TillitError


def check_key(key: bytes, source: str, purpose: str) -> bytes:
    """The key, if it is long and varied enough to resist guessing.

    Raises:
        TillitError: naming the source (never the key) and what is wrong.
    """
    problem = key_weakness(key)
    if problem:
        raise TillitError(
            f"{purpose} key {source} {problem}; create a new one with random bytes "
            "(for example `head -c 32 /dev/urandom`)"
        )
    return key


def create_key_file(path: Path) -> bytes:
    """Write a new random key to a file that must not exist yet (0600, its folder 0700).

    Raises:
        TillitError: the file exists (a key is never replaced).
    """
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise TillitError(f"{path} exists: refusing to replace a key") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def read_key_file(path: Path, purpose: str) -> bytes:
    """A key file's bytes, checked; a symlink or a file others may write is refused."""
    path = Path(path)
    if path.is_symlink():
        raise TillitError(f"{purpose} key file {path} is a symbolic link: give the file itself")
    if not path.is_file():
        raise TillitError(f"{purpose} key file {path} not found")
    if path.stat().st_mode & 0o022:
        raise TillitError(
            f"{purpose} key file {path} may be written by other users: `chmod 600 {path}`"
        )
    return check_key(path.read_bytes(), f"file {path}", purpose)


def read_key_variable(name: str, purpose: str) -> bytes | None:
    """The key held (as hex) in an environment variable, None if it is not set."""
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise TillitError(f"{purpose} key in ${name} is not hexadecimal") from None
    return check_key(key, f"${name}", purpose)
