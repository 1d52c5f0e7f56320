"""The types of the string tables (kept apart so the table modules import nothing else)."""

from __future__ import annotations

from typing import Literal

Lang = Literal["sv", "en"]
LANGS: tuple[Lang, ...] = ("sv", "en")

# One namespace of strings: language -> key -> template (`str.format` placeholders).
Tables = dict[str, dict[str, str]]
