"""Progress per stage: timings always, output only on a terminal and never with --quiet."""

from __future__ import annotations

import pytest

from tests.cli import ok, tillit
from tillit.ops import progress


def test_stages_are_timed_in_order_and_nothing_happens_outside_a_session(capsys) -> None:
    progress.lap("outside")  # no session: nothing recorded, nothing shown
    with progress.stage("outside too"):
        pass
    with progress.session("job", quiet=True) as session:
        with progress.stage("first"):
            pass
        progress.lap("second")
        progress.lap("second")  # a repeated name adds up
    assert list(session.timings) == ["first", "second"]
    assert all(seconds >= 0 for seconds in session.timings.values())
    assert capsys.readouterr().err == ""


def test_progress_is_shown_only_on_a_terminal_without_quiet() -> None:
    assert progress.shown_on(stderr_is_terminal=True, quiet=False)
    assert not progress.shown_on(stderr_is_terminal=True, quiet=True)
    assert not progress.shown_on(stderr_is_terminal=False, quiet=False)


@pytest.mark.slow  # runs the real command in a new process
def test_piped_simulate_writes_nothing_on_stderr(tmp_path) -> None:
    result = ok(
        tillit("simulate", "--out", tmp_path / "d", "--clients", 60, "--months", 2, cwd=tmp_path)
    )
    assert result.stderr == ""
    quiet = ok(
        tillit(
            "simulate",
            "--out",
            tmp_path / "e",
            "--clients",
            60,
            "--months",
            2,
            "--quiet",
            cwd=tmp_path,
        )
    )
    assert quiet.stderr == ""
