"""Leave-one-scheme-out on the bench family's worlds under changed training settings.

What chose `training.lightgbm.colsample_bytree` (issue 21, docs/label-free.md): each world
of the family (bench/robustness.py) is prepared once and kept in `--cache` (simulate,
validate, features: the slow part), then trained on its own history with every scheme of
its last month withheld in turn, under each `--set` given. Prints, per setting and world,
AP and recall@k with all labels and each scheme's recall@k without its labels: the same
figures `bench/robustness.py --family` writes (without flagged share and honest patterns).
With `--family-out`, every figure of the family instead (flagged share, never-labelled
recall, honest patterns, the worst of each), one file per setting in the format of
bench/family.json: the whole-family comparison from the cache (branch lgbm21).

    python bench/loso_sweep.py --worlds messy-s31,bigger-town --cache /tmp/loso-cache \
        --set training.lightgbm.colsample_bytree=0.5 --set training.lightgbm.colsample_bytree=0.8

Each `--set` is one setting; several keys change together as `key=value,key=value`, each
value JSON (`features.history_windows_months=[3, 12],training.lightgbm.n_seeds=5`): a
comma inside a value belongs to it.

`--lightgbm-seeds 0,1,2` refits each world once per LightGBM seed (the seed moved by each
offset; the forest and the review-propensity folds keep `training.seed`) and adds, per
world, each scheme's lowest and mean recall@k without its labels over those seeds; the
row's own figures stay the first seed's (the single-seed figure of the family run when
the first offset is 0). One refit's chance moves a scheme of 5-9 invoices by one or two
(issue 21): the bag says how far a figure is from its line by chance.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustness import (  # type: ignore[import-not-found]
    _evaluate,
    _fit_before_last,
    family_config,
    family_worlds,
    leave_one_scheme_out,
    prepare_world,
    world_figures,
    worst_of,
)

from tillit.config import TillitConfig, TrainingConfig
from tillit.modelling import scorers
from tillit.modelling.scorers import LightGBMScorer


def settings_of(setting: str) -> list[tuple[str, Any]]:
    """The keys and JSON values of one `--set`: `a.b=1`, or several as `a.b=1,c=[3, 12]`.

    Each value is read as JSON up to where it ends, so a comma inside a value (a list, an
    object, a string) never splits it; only a comma after a whole value starts a key.
    """
    if not setting.strip(" "):
        raise SystemExit("--set '': expected key=value")
    decoder = json.JSONDecoder()
    pairs: list[tuple[str, Any]] = []
    at = 0
    while at < len(setting):
        key, equals, _ = setting[at:].partition("=")
        if not equals or not key.strip():
            raise SystemExit(f"--set {setting!r}: expected key=value at {setting[at:]!r}")
        start = at + len(key) + 1
        while start < len(setting) and setting[start] == " ":
            start += 1
        try:
            value, end = decoder.raw_decode(setting, start)
        except json.JSONDecodeError as error:
            raise SystemExit(
                f"--set {setting!r}: the value of {key} is not JSON: {error}"
            ) from None
        pairs.append((key.strip(), value))
        rest = setting[end:].lstrip(" ")
        if rest and not rest.startswith(","):
            raise SystemExit(f"--set {setting!r}: expected ',' after the value of {key}")
        if rest and not rest[1:].strip(" "):  # `a=1,`: a typo, not a setting of nothing
            raise SystemExit(f"--set {setting!r}: a ',' after the value of {key} but no key")
        if rest[1:].lstrip(" ").startswith(","):  # `a=1,,c=2`: else read as the key ',c'
            raise SystemExit(f"--set {setting!r}: an empty item after the value of {key}")
        at = len(setting) - len(rest) + 1
    return pairs


def with_setting(config: TillitConfig, key: str, value: Any) -> TillitConfig:
    """The config with one dotted key set (`training.lightgbm.colsample_bytree`, 0.5)."""
    data = config.model_dump()
    *path, last = key.split(".")
    node = data
    for part in path:
        node = node[part]
    if last not in node:
        raise SystemExit(f"no config key {key}")
    node[last] = value
    return TillitConfig.model_validate(data)


def cached_world(name: str, cache: Path) -> dict[str, Any]:
    """A prepared world of the family, from the cache or simulated and kept there."""
    path = cache / f"{name}.pkl"
    if path.exists():
        with path.open("rb") as handle:
            world: dict[str, Any] = pickle.load(handle)  # our own cache, written below
        return world
    spec = next(spec for spec in family_worlds() if spec.name == name)
    world = prepare_world(spec, family_config())
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(world, handle)
    return world


def sweep_world(world: dict[str, Any], config: TillitConfig) -> dict[str, Any]:
    """AP, recall@k and every scheme's recall@k with its labels withheld, for one world."""
    metrics = _evaluate(_fit_before_last(world, config), world, config)
    table = leave_one_scheme_out(world, config, metrics)
    return {
        "average_precision": round(metrics["combined_average_precision"], 4),
        "recall_at_k": round(metrics["combined_recall_at_k"], 4),
        "leave_one_scheme_out": {s: row["without_its_labels"] for s, row in table.items()},
    }


@contextmanager
def lightgbm_seed_offset(offset: int) -> Iterator[None]:
    """LightGBM seeded `training.seed + offset` while inside, every other seed unchanged.

    The training code builds its supervised scorer through `scorers.lightgbm_scorer` at
    fit time, so only LightGBM's own chance (feature and row samples) moves.
    """
    original = scorers.lightgbm_scorer

    def shifted(training: TrainingConfig) -> LightGBMScorer:
        scorer = original(training)
        scorer.random_state += offset
        return scorer

    scorers.lightgbm_scorer = shifted
    try:
        yield
    finally:
        scorers.lightgbm_scorer = original


def over_seeds(world: dict[str, Any], config: TillitConfig, offsets: list[int]) -> dict[str, Any]:
    """The first seed's figures, each seed's, and every scheme's lowest and mean LOSO over them."""
    rows = {}
    for offset in offsets:
        with lightgbm_seed_offset(offset):
            rows[offset] = sweep_world(world, config)
    first = rows[offsets[0]]
    schemes = first["leave_one_scheme_out"]
    loso = {s: [row["leave_one_scheme_out"][s] for row in rows.values()] for s in schemes}
    return {
        **first,
        "lightgbm_seed_offsets": offsets,
        "per_seed": {str(offset): row for offset, row in rows.items()},
        "average_precision_over_seeds": [row["average_precision"] for row in rows.values()],
        "leave_one_scheme_out_lowest_over_seeds": {s: min(v) for s, v in loso.items()},
        "leave_one_scheme_out_mean_over_seeds": {
            s: round(sum(v) / len(v), 3) for s, v in loso.items()
        },
    }


def family_run(
    setting: str, config: TillitConfig, names: list[str], cache: Path, folder: Path
) -> None:
    """Every family figure of the named cached worlds under `config`, as bench/family.json."""
    began = time.perf_counter()
    specs = {spec.name: spec for spec in family_worlds()}
    worlds = []
    for name in names:
        world = world_figures(specs[name], cached_world(name, cache), config)
        print(setting, name, world["average_precision"], flush=True)
        worlds.append(world)
    family = {
        "family": "full",
        "setting": setting,
        "worst": worst_of(worlds),
        "worlds": worlds,
        "seconds": round(time.perf_counter() - began, 1),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{setting.replace('/', '_')}.json"
    path.write_text(json.dumps(family, indent=2, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worlds", required=True, help="comma-separated family world names")
    parser.add_argument("--cache", type=Path, required=True, help="folder for prepared worlds")
    parser.add_argument("--set", action="append", default=[], dest="settings")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--lightgbm-seeds",
        default="0",
        help="comma-separated offsets of LightGBM's seed: each world refitted per offset",
    )
    parser.add_argument(
        "--family-out",
        type=Path,
        help="folder: every family figure per setting (<folder>/<setting>.json)",
    )
    args = parser.parse_args()
    offsets = [int(offset) for offset in args.lightgbm_seeds.split(",")]
    if args.family_out and offsets != [0]:
        raise SystemExit("--lightgbm-seeds is for the sweep's figures, not --family-out")
    results: dict[str, Any] = {}
    for setting in args.settings or ["default"]:
        config = family_config()
        if setting != "default":
            for key, value in settings_of(setting):  # several keys at once: a=1,b=[3, 12]
                config = with_setting(config, key, value)
        if args.family_out:
            family_run(setting, config, args.worlds.split(","), args.cache, args.family_out)
            continue
        for name in args.worlds.split(","):
            began = time.perf_counter()
            world = cached_world(name, args.cache)
            row = (
                sweep_world(world, config) if offsets == [0] else over_seeds(world, config, offsets)
            )
            row["seconds"] = round(time.perf_counter() - began, 1)
            results.setdefault(setting, {})[name] = row
            print(setting, name, json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
