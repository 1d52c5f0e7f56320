"""No command writes into or over an input, the model store, or through a link.

Every writing command refuses an unsafe place before it reads anything or appends an
audit record (exit 2, a message, the input byte for byte as it was); `--overwrite`
replaces only the files an earlier run's manifest lists. Refusals happen before any
work, so they run in this process (the real Typer app) and take milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests import REPO
from tests.cli import ok, refused
from tests.conftest import tiny_tables
from tillit.cli import app
from tillit.config import TillitConfig
from tillit.data.io import write_tables
from tillit.jobs.common import MANIFEST, OutputExistsError, staged_output

SPEC = REPO / "configs" / "tables" / "card-payments.yaml"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`tillit ARGS` in this process, as `tests.cli.tillit` would return it."""
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def tree_hash(place: Path) -> str:
    """Names and bytes of everything under `place` (links by their target name)."""
    digest = hashlib.sha256()
    paths = sorted(place.rglob("*")) if place.is_dir() else [place]
    for path in paths:
        digest.update(str(path).encode())
        if path.is_symlink():
            digest.update(str(path.readlink()).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A contract folder, a table file, a store that holds a model database, a decisions file."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "export" / "data"
    write_tables(tiny_tables(), data)
    table = tmp_path / "tables" / "t.parquet"
    table.parent.mkdir()
    pd.DataFrame({"TRANSACTION_ID": ["T1"], "TX_AMOUNT": [1.0]}).to_parquet(table)
    store = tmp_path / "models"
    store.mkdir()
    (store / "mlflow.db").write_bytes(b"registry")
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("invoice_id,decision,recovered_sek,reviewer,decided_on,note\n")
    return {"root": tmp_path, "data": data, "table": table, "store": store, "decisions": decisions}


def _cases(p: dict[str, Path]) -> dict[str, tuple[list[str | Path], str]]:
    """One unsafe call per writing command, and the phrase its refusal must say."""
    data, store, table, root = p["data"], p["store"], p["table"], p["root"]
    period = ("--period", "2025-01")
    # fmt: off
    return {
        "simulate": (["simulate", "--out", data], "already holds an earlier run's outputs"),
        "simulate --overwrite": (
            ["simulate", "--out", data, "--overwrite"],
            "which no earlier tillit run's manifest.json lists",
        ),
        "validate": (["validate", "--data", data, "--out", data / "v"], "lies inside the --data"),
        "features": (
            ["features", "--data", data, *period, "--out", data / "f.parquet"],
            "lies inside the --data folder",
        ),
        "train": (
            ["train", "--data", data, "--store", data / "models"], "lies inside the --data folder"
        ),
        "train --table": (
            ["train", "--table", table, "--spec", SPEC, "--store", table.parent],
            "contains the --table file",
        ),
        "promote": (["promote", "--data", data, "--store", data], "is the --data folder"),
        "retrain": (
            ["retrain", "--data", data, "--out", root, "--store", store],
            "contains the --data folder",
        ),
        "score": (
            ["score", "--data", data, *period, "--out", data, "--overwrite", "--store", store],
            "is the --data folder",
        ),
        "score --table": (
            ["score", "--table", table, "--spec", SPEC, "--period", "2026-01", "--out",
             table.parent, "--overwrite", "--store", store],
            "contains the --table file",
        ),
        "providers": (
            ["providers", "--data", data, *period, "--out", data, "--overwrite", "--store", store],
            "is the --data folder",
        ),
        "drift": (
            ["drift", "--data", data, *period, "--out", data / "invoices.parquet", "--store", store],
            "lies inside the --data folder",
        ),
        "feedback": (
            ["feedback", "--data", data, "--decisions", data / "decision_log.parquet",
             "--store", store],
            "decision_log.parquet is the --decisions input and also what this command writes",
        ),
        "pseudonymise": (
            ["pseudonymise", "--in", data, "--out", data / "p", "--key-file", root / "k"],
            "lies inside the --in folder",
        ),
        "pseudonymise --key-file": (
            ["pseudonymise", "--in", data, "--out", root / "p", "--key-file", root / "p" / "k",
             "--new-key"],
            "lies inside the --out folder",
        ),
        "demo": (
            ["demo", "--data", data, "--runs", data / "runs", "--store", store],
            "--runs " + str(data / "runs") + " lies inside the --data folder",
        ),
    }
    # fmt: on


CASES = [
    "simulate", "simulate --overwrite", "validate", "features", "train", "train --table",
    "promote", "retrain", "score", "score --table", "providers", "drift", "feedback",
    "pseudonymise", "pseudonymise --key-file", "demo",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_every_writing_command_refuses_an_unsafe_place_and_leaves_the_inputs(place, case):
    args, phrase = _cases(place)[case]
    pd.read_csv(place["decisions"]).to_parquet(place["data"] / "decision_log.parquet")
    before = tree_hash(place["root"])
    refused(cli(*args), phrase)
    assert tree_hash(place["root"]) == before, "an input, the store or the folder changed"
    assert not (place["store"] / "audit_log.jsonl").exists()


def test_feedback_refuses_a_store_that_is_the_data_folder(place):
    """feedback has no --out: it writes the data folder's logs and the store's audit log."""
    before = tree_hash(place["root"])
    refused(
        cli("feedback", "--data", place["data"], "--decisions", place["decisions"],
            "--risk-list", place["data"] / "invoices.parquet", "--store", place["data"]),
        "--store", "contains the --risk-list file",
    )  # fmt: skip
    assert tree_hash(place["root"]) == before


# ----------------------------------------------------------------------- links


def test_a_symlinked_out_is_refused_before_any_audit_record(place):
    earlier = place["root"] / "runs" / "score-2025-01"
    earlier.mkdir(parents=True)
    (earlier / "risk_list.csv").write_text("an earlier run\n")
    link = place["root"] / "out"
    link.symlink_to(earlier)
    before = tree_hash(place["root"])
    refused(
        cli("score", "--data", place["data"], "--period", "2025-01", "--out", link,
            "--overwrite", "--store", place["store"]),
        f"--out {link} is a symbolic link", "never writes through a link",
    )  # fmt: skip
    assert tree_hash(place["root"]) == before
    assert not (place["store"] / "audit_log.jsonl").exists()


def test_a_symlinked_decision_log_is_refused_and_its_target_kept(place):
    """The attack: decision_log.parquet linked to another file made feedback rewrite it."""
    target = place["root"] / "precious.parquet"
    pd.DataFrame({"keep": [1]}).to_parquet(target)
    (place["data"] / "decision_log.parquet").symlink_to(target)
    before = tree_hash(place["root"])
    refused(
        cli("feedback", "--data", place["data"], "--decisions", place["decisions"],
            "--store", place["store"]),
        "decision_log.parquet is a symbolic link",
    )  # fmt: skip
    assert tree_hash(place["root"]) == before
    assert not (place["store"] / "audit_log.jsonl").exists()


def test_a_symlinked_table_decision_log_is_refused(place):
    target = place["root"] / "precious.parquet"
    pd.DataFrame({"keep": [1]}).to_parquet(target)
    (place["table"].parent / "t.decisions.parquet").symlink_to(target)
    before = tree_hash(place["root"])
    refused(
        cli("feedback", "--table", place["table"], "--spec", SPEC,
            "--decisions", place["decisions"], "--store", place["store"]),
        "t.decisions.parquet is a symbolic link",
    )  # fmt: skip
    assert tree_hash(place["root"]) == before


def test_a_symlinked_file_inside_a_validate_out_is_refused(place):
    out = place["root"] / "v"
    out.mkdir()
    (out / "validation.json").symlink_to(place["data"] / "invoices.parquet")
    before = tree_hash(place["root"])
    refused(
        cli("validate", "--data", place["data"], "--out", out), "validation.json is a symbolic link"
    )
    assert tree_hash(place["root"]) == before


@pytest.mark.parametrize("command", ["simulate-table", "drift", "features"])
def test_a_symlinked_output_file_is_refused(place, command):
    target = place["root"] / "precious.parquet"
    target.write_bytes(b"keep")
    link = place["root"] / "out.parquet"
    link.symlink_to(target)
    args = {
        "simulate-table": ["--kind", "card-payments", "--rows", "10"],
        "drift": ["--data", place["data"], "--period", "2025-01", "--store", place["store"]],
        "features": ["--data", place["data"], "--period", "2025-01"],
    }[command]
    refused(cli(command, *args, "--out", link), "is a symbolic link")
    assert target.read_bytes() == b"keep"


# ------------------------------------------------------------- --overwrite and the store


def test_a_store_inside_out_is_refused_and_survives_overwrite(place):
    out = place["root"] / "runs"
    store = out / "models"
    store.mkdir(parents=True)
    (store / "mlflow.db").write_bytes(b"the registry")
    before = tree_hash(out)
    refused(
        cli("score", "--data", place["data"], "--period", "2025-01", "--out", out,
            "--overwrite", "--store", store),
        "contains the --store folder",
    )  # fmt: skip
    assert tree_hash(out) == before


def _earlier_run(out: Path, listed: dict[str, str], unlisted: dict[str, str]) -> None:
    out.mkdir(parents=True)
    for name, text in {**listed, **unlisted}.items():
        (out / name).write_text(text)
    outputs = {name: "sha" for name in listed}
    (out / MANIFEST).write_text(json.dumps({"outputs": outputs}))


def test_overwrite_replaces_only_what_the_earlier_manifest_lists(tmp_path):
    out = tmp_path / "score"
    _earlier_run(
        out,
        listed={"risk_list.csv": "old", "quarantine.parquet": "old"},
        unlisted={"notes.txt": "the auditor's notes"},
    )
    (out / "models").mkdir()
    (out / "models" / "mlflow.db").write_text("a store someone put here")
    with staged_output(out, overwrite=True) as work:
        (work / "risk_list.csv").write_text("new")
        (work / MANIFEST).write_text(json.dumps({"outputs": {"risk_list.csv": "sha"}}))
    assert (out / "risk_list.csv").read_text() == "new"
    assert not (out / "quarantine.parquet").exists(), "the earlier run's own file goes"
    assert (out / "notes.txt").read_text() == "the auditor's notes"
    assert (out / "models" / "mlflow.db").read_text() == "a store someone put here"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["score"]


def test_overwrite_of_a_folder_without_a_manifest_keeps_everything_else(tmp_path):
    out = tmp_path / "score"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with staged_output(out, overwrite=True) as work:
        (work / "report.html").write_text("new")
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "report.html").read_text() == "new"


def test_a_manifest_cannot_make_overwrite_reach_outside_the_folder(tmp_path):
    """A manifest is a file anyone may edit: only plain names in the folder count."""
    victim = tmp_path / "data" / "invoices.parquet"
    victim.parent.mkdir()
    victim.write_text("real invoices")
    out = tmp_path / "score"
    _earlier_run(out, listed={"report.html": "old"}, unlisted={})
    outputs = {"../data/invoices.parquet": "sha", str(victim): "sha", "report.html": "sha"}
    (out / MANIFEST).write_text(json.dumps({"outputs": outputs}))
    with staged_output(out, overwrite=True) as work:
        (work / "risk_list.csv").write_text("new")
    assert victim.read_text() == "real invoices"
    assert not (out / "report.html").exists()


def test_staged_output_never_replaces_a_file_no_earlier_manifest_lists(tmp_path):
    """An operator's own `quarantine.parquet` in --out, no manifest: refused, nothing changed."""
    out = tmp_path / "score"
    out.mkdir()
    (out / "quarantine.parquet").write_text("the operator's own quarantine")
    (out / "notes.txt").write_text("the operator's notes")
    before = tree_hash(out)
    with (
        pytest.raises(OutputExistsError, match=r"holds quarantine\.parquet, which no earlier"),
        staged_output(out, overwrite=True) as work,
    ):
        (work / "quarantine.parquet").write_text("this run's")
        (work / "risk_list.csv").write_text("this run's")
    assert tree_hash(out) == before


def test_a_failed_run_leaves_the_earlier_outputs(tmp_path):
    out = tmp_path / "score"
    _earlier_run(out, listed={"risk_list.csv": "old"}, unlisted={})
    before = tree_hash(out)
    with pytest.raises(OutputExistsError), staged_output(out, overwrite=True) as work:
        (work / "risk_list.csv").write_text("half")
        raise OutputExistsError("stopped")
    assert tree_hash(out) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["score"]


# ------------------------------------------------------------------------- simulate


def test_simulate_overwrite_replaces_only_what_an_earlier_simulate_wrote(tmp_path):
    data = tmp_path / "data"
    small = ("--clients", "40", "--months", "3", "--quiet")
    ok(cli("simulate", "--out", data, "--seed", "1", *small))
    manifest = json.loads((data / MANIFEST).read_text())
    assert {"invoices.parquet", "truth.parquet"} <= set(manifest["outputs"])
    (data / "notes.txt").write_text("kept")
    first = (data / "invoices.parquet").read_bytes()
    refused(cli("simulate", "--out", data, "--seed", "2", *small), "pass --overwrite")
    assert (data / "invoices.parquet").read_bytes() == first
    ok(cli("simulate", "--out", data, "--seed", "2", "--format", "csv", "--overwrite", *small))
    assert (data / "notes.txt").read_text() == "kept"
    assert (data / "invoices.csv").exists() and not (data / "invoices.parquet").exists()
    assert json.loads((data / MANIFEST).read_text())["settings"]["seed"] == 2


# ------------------------------------------- every writing command × every unsafe place


@dataclass(frozen=True)
class Writer:
    """A writing command called with OUT as the place it writes, and the input it reads.

    `store_out`: the place is the model store itself (train, promote, feedback write
    only there and into the input), so only its overlap with the input is asked.
    `replaces`: what `--overwrite` governs (an OUT `folder` or an OUT `file` and its side
    files); None for a command without it (it writes only the store, appends, or is demo).
    Every place below is asked with `--overwrite` given: it never unlocks an unsafe one.
    """

    argv: Callable[[dict[str, Path], Path], list[str | Path]]
    option: str = "--out"
    input: tuple[str, str, str] | None = ("data", "--data", "folder")  # place key, flag, noun
    config: bool = True
    store_out: bool = False
    replaces: Literal["folder", "file"] | None = "folder"

    def call(self, place: dict[str, Path], out: Path, overwrite: bool = True) -> list[str | Path]:
        """The command line, with `--overwrite` when the command takes it and it is asked."""
        return [*self.argv(place, out), *(["--overwrite"] if overwrite and self.replaces else [])]


_MONTH = ("--period", "2025-01")
_TABLE_INPUT = ("table", "--table", "file")
# fmt: off
WRITERS: dict[str, Writer] = {
    "simulate": Writer(
        lambda p, out: ["simulate", "--out", out, "--config", p["config"]],
        input=("config", "--config", "file"), config=False,
    ),
    "simulate-table": Writer(
        lambda p, out: ["simulate-table", "--kind", "card-payments", "--rows", "100", "--out", out],
        input=None, config=False, replaces="file",
    ),
    "validate": Writer(
        lambda p, out: ["validate", "--data", p["data"], "--out", out, "--config", p["config"]]
    ),
    "link": Writer(
        lambda p, out: ["link", "--data", p["data"], "--out", out,
                        "--method", "exact", "--config", p["config"]]
    ),
    "features": Writer(
        lambda p, out: ["features", "--data", p["data"], *_MONTH, "--out", out,
                        "--config", p["config"]],
        replaces="file",
    ),
    "train": Writer(
        lambda p, out: ["train", "--data", p["data"], "--store", out, "--config", p["config"]],
        option="--store", store_out=True, replaces=None,
    ),
    "train --table": Writer(
        lambda p, out: ["train", "--table", p["table"], "--spec", SPEC, "--store", out,
                        "--config", p["config"]],
        option="--store", input=_TABLE_INPUT, store_out=True, replaces=None,
    ),
    "promote": Writer(
        lambda p, out: ["promote", "--data", p["data"], "--store", out, "--config", p["config"]],
        option="--store", store_out=True, replaces=None,
    ),
    "retrain": Writer(
        lambda p, out: ["retrain", "--data", p["data"], "--out", out, "--config", p["config"]]
    ),
    "score": Writer(
        lambda p, out: ["score", "--data", p["data"], *_MONTH, "--out", out,
                        "--config", p["config"]]
    ),
    "score --table": Writer(
        lambda p, out: ["score", "--table", p["table"], "--spec", SPEC, "--period", "2026-01-01",
                        "--out", out, "--config", p["config"]],
        input=_TABLE_INPUT,
    ),
    "drift": Writer(
        lambda p, out: ["drift", "--data", p["data"], *_MONTH, "--out", out,
                        "--config", p["config"]],
        replaces="file",
    ),
    "providers": Writer(
        lambda p, out: ["providers", "--data", p["data"], *_MONTH, "--out", out,
                        "--config", p["config"]]
    ),
    "feedback": Writer(
        lambda p, out: ["feedback", "--data", p["data"], "--decisions", p["decisions"],
                        "--store", out],
        option="--store", input=("decisions", "--decisions", "file"), config=False,
        store_out=True, replaces=None,
    ),
    "feedback --table": Writer(
        lambda p, out: ["feedback", "--table", p["table"], "--spec", SPEC,
                        "--decisions", p["decisions"], "--store", out],
        option="--store", input=_TABLE_INPUT, config=False, store_out=True, replaces=None,
    ),
    "pseudonymise": Writer(
        lambda p, out: ["pseudonymise", "--in", p["data"], "--out", out,
                        "--key-file", p["root"] / "keys" / "k.key", "--config", p["config"]],
        input=("data", "--in", "folder"),
    ),
    "demo": Writer(
        lambda p, out: ["demo", "--data", p["data"], "--runs", out, "--config", p["config"]],
        option="--runs", replaces=None,
    ),
    "log --anchor": Writer(
        lambda p, out: ["log", "--anchor", out], option="--anchor", input=None, config=False,
        replaces=None,
    ),
}
# fmt: on


def _unsafe_places(writer: Writer) -> list[str]:
    """The unsafe places asked of one command: the input's, the config's, the store's."""
    places = ["is the input", "inside the input", "contains the input"] if writer.input else []
    places += ["contains the config"] if writer.config else []
    places += [] if writer.store_out else ["is the store", "inside the store", "contains the store"]
    return places


UNSAFE = [(name, where) for name, writer in WRITERS.items() for where in _unsafe_places(writer)]


@pytest.mark.parametrize(("command", "where"), UNSAFE, ids=[f"{c}: {w}" for c, w in UNSAFE])
def test_no_writing_command_writes_as_over_or_around_an_input_or_the_store(
    place, monkeypatch, command, where
):
    """Refused with exit 2 and a message naming the place and why, before anything is read.

    The store is the default `models` of the working folder (never named on the command
    line) except where `--out` would hold it: there it is named with `--store`.
    """
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = place["root"]
    place["config"] = root / "cfg" / "tillit.yaml"
    place["config"].parent.mkdir()
    place["config"].write_text((REPO / "configs" / "default.yaml").read_text("utf-8"), "utf-8")
    elsewhere = root / "keep" / "models"
    elsewhere.mkdir(parents=True)
    (elsewhere / "mlflow.db").write_bytes(b"another registry")
    writer = WRITERS[command]
    flag, noun, given = "--store", "folder", Path("models")
    if where.endswith("the input"):
        assert writer.input is not None
        key, flag, noun = writer.input
        given = place[key]
    elif where.endswith("the config"):
        flag, noun, given = "--config", "file", place["config"]
    out, why = {
        "is": (root / given, f"is the {flag} {noun}"),
        "inside": (root / given / "x", f"lies inside the {flag} {noun} {given}"),
        "contains": ((root / given).parent, f"contains the {flag} {noun} {given}"),
    }[where.split()[0]]
    args = writer.call(place, out)
    if where == "contains the store":
        out, why = elsewhere.parent, f"contains the --store folder {elsewhere}"
        args = [*writer.call(place, out), "--store", elsewhere]
    before = tree_hash(root)
    refused(cli(*args), f"{writer.option} {out} {why}")
    assert tree_hash(root) == before, "an input, the store or the folder changed"
    assert not (place["store"] / "audit_log.jsonl").exists()
    assert not (root / "runs").exists()


def test_every_writing_command_is_in_the_table():
    """A new command that writes must be added above (and so be tested)."""
    from tillit.cli import app

    named = {info.name or info.callback.__name__ for info in app.registered_commands}  # type: ignore[union-attr]
    asked = {name.split()[0] for name in WRITERS}
    assert named - asked == set(), "a command missing from WRITERS: does it write?"


def test_every_command_with_an_out_takes_overwrite():
    """The same flag everywhere: a re-run into the same --out never needs a hand-deleted folder."""
    import typer.main

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    options = {
        name: {flag for param in command.params for flag in param.opts}
        for name, command in commands.items()
    }
    with_out = {name for name, flags in options.items() if "--out" in flags}
    assert with_out == {
        name.split()[0] for name, writer in WRITERS.items() if writer.replaces is not None
    }
    assert {name for name in with_out if "--overwrite" not in options[name]} == set()


REPLACING = [name for name, writer in WRITERS.items() if writer.replaces is not None]


def _earlier_output(place: dict[str, Path], command: str) -> Path:
    """An earlier run's OUT as tillit left it: the outputs and the manifest that lists them."""
    writer = WRITERS[command]
    folder = place["root"] / "earlier"
    if writer.replaces == "folder":
        _earlier_run(folder, listed={"earlier.txt": "an earlier run"}, unlisted={})
        return folder
    folder.mkdir()
    out = folder / ("x.json" if command == "drift" else "x.parquet")
    out.write_text("an earlier run")
    (folder / f"{out.name}.manifest.json").write_text(json.dumps({"outputs": {out.name: "sha"}}))
    return out


@pytest.mark.parametrize("command", REPLACING)
def test_a_rerun_into_an_earlier_out_is_refused_without_overwrite(place, monkeypatch, command):
    """Every command that writes an --out: refused before any work, the earlier run kept."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    place["config"] = REPO / "configs" / "default.yaml"
    out = _earlier_output(place, command)
    before = tree_hash(place["root"])
    refused(cli(*WRITERS[command].call(place, out, overwrite=False)), "pass --overwrite")
    assert tree_hash(place["root"]) == before
    assert not (place["store"] / "audit_log.jsonl").exists()


FILE_WRITERS = [name for name, writer in WRITERS.items() if writer.replaces == "file"]


@pytest.mark.parametrize("command", FILE_WRITERS)
def test_overwrite_never_replaces_a_file_no_earlier_manifest_lists(place, monkeypatch, command):
    """A file output's name held by a file tillit did not write (no manifest beside it lists
    it): `--overwrite` refuses rather than replace someone's file."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    place["config"] = REPO / "configs" / "default.yaml"
    out = _earlier_output(place, command)
    (out.parent / f"{out.name}.manifest.json").unlink()
    before = tree_hash(place["root"])
    refused(
        cli(*WRITERS[command].call(place, out)),
        f"holds {out.name}, which no earlier tillit run's {out.name}.manifest.json lists",
    )
    assert tree_hash(place["root"]) == before


FOLDER_FILES = {
    "validate": "quarantine.parquet",
    "retrain": "summary.md",
    "score": "risk_list.csv",
    "score --table": "report.html",
    "providers": "providers.html",
    "link": "entities.parquet",
}


@pytest.mark.parametrize(("command", "name"), FOLDER_FILES.items())
def test_overwrite_never_replaces_a_folder_file_no_earlier_manifest_lists(
    place, monkeypatch, command, name
):
    """A folder command's output name held by a file no earlier manifest lists: refused
    before any work (no model read, no audit record), the folder as it was."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    place["config"] = REPO / "configs" / "default.yaml"
    out = place["root"] / "out"
    out.mkdir()
    (out / name).write_text("the operator's own file")
    (out / "notes.txt").write_text("the operator's notes")
    before = tree_hash(place["root"])
    refused(
        cli(*WRITERS[command].call(place, out)),
        f"holds {name}, which no earlier tillit run's manifest.json lists",
    )
    assert tree_hash(place["root"]) == before
    assert not (place["store"] / "audit_log.jsonl").exists()
    assert not (place["root"] / ".out.partial").exists(), "refused after the work"


def test_features_overwrite_replaces_its_own_files_and_keeps_the_rest(place):
    """The real command, twice: its files and manifest replaced, a neighbour's file kept."""
    out = place["root"] / "features" / "f.parquet"
    run = ("features", "--data", place["data"], "--period", "2025-01", "--out", out)
    ok(cli(*run))
    manifest = out.with_name("f.parquet.manifest.json")
    first = json.loads(manifest.read_text("utf-8"))["outputs"]
    assert {"f.parquet", "f_findings.parquet", "f_quarantine.parquet"} <= set(first)
    (out.parent / "notes.txt").write_text("the auditor's notes")
    # A side file the earlier run listed that this run does not write again.
    earlier = json.loads(manifest.read_text("utf-8"))
    earlier["outputs"]["f_validation_quarantine.parquet"] = "sha"
    manifest.write_text(json.dumps(earlier), "utf-8")
    (out.parent / "f_validation_quarantine.parquet").write_text("from the earlier run")
    before = tree_hash(out.parent)
    refused(cli(*run), "already holds", "pass --overwrite")
    assert tree_hash(out.parent) == before
    ok(cli(*run, "--overwrite"))
    assert (out.parent / "notes.txt").read_text() == "the auditor's notes"
    assert not (out.parent / "f_validation_quarantine.parquet").exists()
    assert set(json.loads(manifest.read_text("utf-8"))["outputs"]) == set(first)


def _messy_export(root: Path) -> tuple[Path, TillitConfig]:
    """tiny_tables with one invoice that breaks the contract, and a limit that lets it pass."""
    from tillit.config import ValidationConfig, load_config

    tables = tiny_tables()
    invoices = tables["invoices"]
    bad = invoices.iloc[[0]].assign(invoice_id="BAD", amount_sek=-5.0)
    tables["invoices"] = pd.concat([invoices, bad], ignore_index=True)
    write_tables(tables, root / "messy")
    config = load_config()
    lenient = config.model_copy(update={"validation": ValidationConfig(max_quarantine_share=0.5)})
    return root / "messy", lenient


def test_features_that_fail_to_build_write_nothing_and_block_no_later_run(place, monkeypatch):
    """A first run whose build fails leaves no side file, so the next run is not refused."""
    from tillit.jobs import features as features_job
    from tillit.jobs.features import run_features

    data, config = _messy_export(place["root"])
    out = place["root"] / "features" / "f.parquet"

    def broken(*args, **kwargs):
        raise RuntimeError("the build failed")

    monkeypatch.setattr("tillit.features.build_features", broken)
    with pytest.raises(RuntimeError, match="the build failed"):
        run_features(data, "2025-01", out, config)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    monkeypatch.undo()
    outcome = features_job.run_features(data, "2025-01", out, config)
    assert outcome.rows_quarantined_by_validation == 1
    assert (out.parent / "f_validation_quarantine.parquet").exists()


def test_features_with_a_period_without_invoices_keep_the_earlier_table(place):
    """`--overwrite` with a mistyped --period: refused, the earlier run's files all kept."""
    from tillit.errors import NothingToScoreError
    from tillit.jobs.features import run_features

    data, config = _messy_export(place["root"])
    out = place["root"] / "features" / "f.parquet"
    run_features(data, "2025-01", out, config)
    before = tree_hash(out.parent)
    with pytest.raises(NothingToScoreError) as refusal:
        run_features(data, "2052-01", out, config, overwrite=True)
    assert tree_hash(out.parent) == before
    assert "(1 rows broke the contract: see `tillit validate`)" in str(refusal.value)
    assert {path.name for path in out.parent.iterdir()} == {
        "f.parquet",
        "f_findings.parquet",
        "f_quarantine.parquet",
        "f_validation_quarantine.parquet",
        "f.parquet.manifest.json",
    }


def test_features_that_fail_while_writing_leave_the_earlier_files(place, monkeypatch):
    """The files are replaced as a unit: a write that fails half-way replaces none."""
    from tillit.jobs import features as features_job

    data, config = _messy_export(place["root"])
    out = place["root"] / "features" / "f.parquet"
    features_job.run_features(data, "2025-01", out, config)
    out.write_text("the earlier run's table")  # so a replaced one would show
    before = tree_hash(out.parent)
    real = features_job.write_frame

    def fails_on_findings(frame: pd.DataFrame, path: Path) -> Path:
        if "findings" in path.name:
            raise OSError("disk full")
        return real(frame, path)

    monkeypatch.setattr(features_job, "write_frame", fails_on_findings)
    with pytest.raises(OSError, match="disk full"):
        features_job.run_features(data, "2025-01", out, config, overwrite=True)
    assert tree_hash(out.parent) == before


def _fails_half_way(path: Path) -> None:
    Path(path).write_text("half a fi")
    raise OSError("disk full")


@pytest.mark.parametrize("command", ["drift", "simulate-table"])
def test_a_file_output_that_fails_half_way_leaves_the_earlier_one(place, monkeypatch, command):
    """drift and simulate-table write their file as a unit, like the others: a write that
    fails half-way leaves the earlier run's file and manifest, and no scratch file."""
    from tillit.jobs import drift as drift_job

    out = _earlier_output(place, command)
    before = tree_hash(place["root"])
    monkeypatch.setattr(
        drift_job,
        "run_drift",
        lambda *args: drift_job.DriftOutcome(report=None, model_version="1", note="no reference"),
    )
    monkeypatch.setattr("tillit.data.io.write_json", lambda payload, path: _fails_half_way(path))
    monkeypatch.setattr(
        "tillit.data.io.write_frame", lambda frame, path, **kwargs: _fails_half_way(path)
    )
    place["config"] = REPO / "configs" / "default.yaml"
    with pytest.raises(OSError, match="disk full"):
        cli(*WRITERS[command].call(place, out))
    assert tree_hash(place["root"]) == before


def test_validate_and_simulate_table_overwrite_their_own_outputs(place):
    out = place["root"] / "v"
    ok(cli("validate", "--data", place["data"], "--out", out))
    listed = json.loads((out / MANIFEST).read_text("utf-8"))["outputs"]
    assert set(listed) == {"validation.json", "quarantine.parquet"}
    (out / "notes.txt").write_text("mine")
    refused(cli("validate", "--data", place["data"], "--out", out), "pass --overwrite")
    ok(cli("validate", "--data", place["data"], "--out", out, "--overwrite"))
    assert (out / "notes.txt").read_text() == "mine"
    table = place["root"] / "t.csv"
    make = ("simulate-table", "--kind", "card-payments", "--rows", "100", "--out", table)
    ok(cli(*make))
    first = table.read_bytes()
    refused(cli(*make, "--seed", "8"), "pass --overwrite")
    assert table.read_bytes() == first
    ok(cli(*make, "--seed", "8", "--overwrite"))
    assert table.read_bytes() != first
    assert json.loads((place["root"] / "t.csv.manifest.json").read_text("utf-8"))["outputs"] == {
        "t.csv": hashlib.sha256(table.read_bytes()).hexdigest()
    }


def test_a_file_output_of_another_suffix_keeps_its_own_manifest(place):
    """`t.csv` and `t.parquet` are two outputs: a run into one never removes the other."""
    make = ("simulate-table", "--kind", "card-payments", "--rows", "100")
    csv, parquet = place["root"] / "t.csv", place["root"] / "t.parquet"
    ok(cli(*make, "--out", csv))
    first = csv.read_bytes()
    ok(cli(*make, "--out", parquet, "--overwrite"))
    assert csv.read_bytes() == first
    assert parquet.exists()
    assert set(json.loads((place["root"] / "t.csv.manifest.json").read_text())["outputs"]) == {
        "t.csv"
    }
    assert set(json.loads((place["root"] / "t.parquet.manifest.json").read_text())["outputs"]) == {
        "t.parquet"
    }


def test_an_old_stem_named_manifest_still_lets_overwrite_replace_what_it_lists(place):
    """A manifest an earlier tillit named after the stem (`t.manifest.json`) still counts for
    the files it lists that this run writes again; nothing is removed on its word."""
    old = place["root"] / "t.csv"
    old.write_text("an earlier run")
    other = place["root"] / "t.parquet"
    other.write_text("an earlier run of the other suffix")
    legacy = place["root"] / "t.manifest.json"
    legacy.write_text(json.dumps({"outputs": {"t.csv": "sha", "t.parquet": "sha"}}))
    make = ("simulate-table", "--kind", "card-payments", "--rows", "100", "--out", old)
    ok(cli(*make, "--overwrite"))
    assert old.read_text() != "an earlier run"
    assert other.read_text() == "an earlier run of the other suffix"
    assert legacy.exists()


def test_link_overwrite_replaces_only_what_its_earlier_manifest_lists(place):
    """The real command, twice: an auditor's file in --out survives, the earlier run's go."""
    out = place["root"] / "links"
    link = ("link", "--data", place["data"], "--out", out, "--method", "exact")
    ok(cli(*link))
    first = json.loads((out / MANIFEST).read_text("utf-8"))["outputs"]
    assert {"entities.parquet", "provider_links.csv"} <= set(first)
    (out / "notes.txt").write_text("the auditor's notes")
    # A file the earlier run listed that this run does not write again.
    manifest = json.loads((out / MANIFEST).read_text("utf-8"))
    manifest["outputs"]["old_pairs.csv"] = "sha"
    (out / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    (out / "old_pairs.csv").write_text("from the earlier run")
    before = tree_hash(out)
    refused(cli(*link), "already holds an earlier run's outputs", "pass --overwrite")
    assert tree_hash(out) == before
    ok(cli(*link, "--overwrite"))
    assert (out / "notes.txt").read_text() == "the auditor's notes"
    assert not (out / "old_pairs.csv").exists()
    again = json.loads((out / MANIFEST).read_text("utf-8"))["outputs"]
    assert set(again) == set(first)
    assert {path.name for path in out.iterdir()} == {*first, MANIFEST, "notes.txt"}


def test_pseudonymise_never_replaces_tables_no_earlier_manifest_lists(place):
    """Into a folder holding another export: refused; into its own earlier output: replaced."""
    key = place["root"] / "keys" / "k.key"
    other = place["root"] / "other"
    write_tables(tiny_tables(), other)
    before = tree_hash(other)
    refused(
        cli("pseudonymise", "--in", place["data"], "--out", other, "--key-file", key, "--new-key"),
        "already holds an earlier run's outputs", "pass --overwrite",
    )  # fmt: skip
    assert tree_hash(other) == before and not key.exists()
    refused(
        cli("pseudonymise", "--in", place["data"], "--out", other, "--key-file", key, "--new-key",
            "--overwrite"),
        "invoices.parquet", "which no earlier tillit run's manifest.json lists",
    )  # fmt: skip
    assert tree_hash(other) == before and not key.exists()
    out = place["root"] / "pseud"
    run = ("pseudonymise", "--in", place["data"], "--out", out, "--key-file", key)
    ok(cli(*run, "--new-key"))
    (out / "notes.txt").write_text("mine")
    refused(cli(*run), "pass --overwrite")
    ok(cli(*run, "--overwrite"))
    assert (out / "notes.txt").read_text() == "mine"
    assert "invoices.parquet" in json.loads((out / MANIFEST).read_text("utf-8"))["outputs"]


def test_pseudonymise_overwrite_removes_tables_its_earlier_run_wrote_and_this_one_does_not(place):
    """Last month's `hospital_stays.csv` must not stay beside this month's tables."""
    key = place["root"] / "keys" / "k.key"
    last_month, this_month = place["root"] / "last", place["root"] / "this"
    write_tables(tiny_tables(), last_month, fmt="csv")
    tables = tiny_tables()
    del tables["hospital_stays"]
    write_tables(tables, this_month, fmt="csv")
    out = place["root"] / "pseud"
    ok(cli("pseudonymise", "--in", last_month, "--out", out, "--key-file", key, "--new-key"))
    assert (out / "hospital_stays.csv").exists()
    (out / "notes.txt").write_text("mine")
    run = ("pseudonymise", "--in", this_month, "--out", out, "--key-file", key)
    refused(cli(*run), "pass --overwrite")
    ok(cli(*run, "--overwrite"))
    assert not (out / "hospital_stays.csv").exists()
    assert (out / "notes.txt").read_text() == "mine"
    listed = set(json.loads((out / MANIFEST).read_text("utf-8"))["outputs"])
    assert "hospital_stays.csv" not in listed and "invoices.csv" in listed
    assert {path.name for path in out.iterdir()} == {*listed, MANIFEST, "notes.txt"}
    assert sorted(path.name for path in place["root"].iterdir() if path.name.startswith(".")) == []
