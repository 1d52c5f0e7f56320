"""Progress of long commands, stage by stage, on stderr; and each stage's time at the end.

The CLI opens a session (`with progress.session(enabled):`); jobs and stages mark
where they are with `progress.stage(name)` (a block) or `progress.lap(name)` (the
stage that just ended). Outside a session both do nothing, so library callers
and tests see no output. Shown only on a terminal and without `--quiet`: piped
or logged output stays clean. Timings are collected either way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    """One command's stages: a spinner on stderr while it runs, a line per finished stage."""

    title: str
    shown: bool
    timings: dict[str, float] = field(default_factory=dict)
    _console: Any = None
    _status: Any = None
    _clock: float = field(default_factory=time.perf_counter)
    _began: float = field(default_factory=time.perf_counter)

    def start(self) -> None:
        if not self.shown:
            return
        from rich.console import Console

        self._console = Console(stderr=True)
        self._status = self._console.status(f"{self.title}…")
        self._status.start()

    def running(self, name: str) -> None:
        """Say which stage runs now."""
        if self._status is not None:
            self._status.update(f"{self.title}: {name}…")

    def finished(self, name: str, seconds: float) -> None:
        """Record a finished stage (its time adds up when a name repeats)."""
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 3)
        if self._console is not None:
            self._console.print(f"[green]✓[/green] {name} [dim]{seconds:.1f} s[/dim]")

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
        if self._console is not None and self.timings:
            total = time.perf_counter() - self._began
            parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items())
            self._console.print(f"[dim]{self.title}: {total:.1f} s ({parts})[/dim]")


_current: list[Session] = []


def shown_on(stderr_is_terminal: bool, quiet: bool) -> bool:
    """Progress is shown on a terminal unless asked to be quiet."""
    return stderr_is_terminal and not quiet


@contextmanager
def session(title: str, quiet: bool = False) -> Iterator[Session]:
    """A command's progress; shown when stderr is a terminal and not `quiet`."""
    import sys

    current = Session(title=title, shown=shown_on(sys.stderr.isatty(), quiet))
    current.start()
    _current.append(current)
    try:
        yield current
    finally:
        _current.pop()
        current.stop()


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark a block as one stage of the running command (nothing outside a session)."""
    if not _current:
        yield
        return
    current = _current[-1]
    current.running(name)
    began = time.perf_counter()
    try:
        yield
    finally:
        current.finished(name, time.perf_counter() - began)
        current._clock = time.perf_counter()


def lap(name: str, next_stage: str | None = None) -> None:
    """The stage `name` just ended (timed from the previous mark); `next_stage` starts."""
    if not _current:
        return
    current = _current[-1]
    now = time.perf_counter()
    current.finished(name, now - current._clock)
    current._clock = now
    if next_stage is not None:
        current.running(next_stage)
