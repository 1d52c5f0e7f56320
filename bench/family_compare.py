"""Compare bench family runs (`bench/robustness.py --family --out FILE`) side by side.

Per world: average precision, recall@k and never-labelled recall@k of each run; per run:
worst and mean AP, worst recalls, the largest flagged share, the lowest
leave-one-scheme-out recall of each scheme (and its world), and each honest-odd
pattern's share of honest invoices inside the capacity, pooled over the worlds, and the
worlds where a pattern's share is above the run's capacity share (over all its honest invoices, and
over those at providers with no irregular invoice that month, when the run has them).

Usage:
    python bench/family_compare.py bench/family.json /tmp/new/family.json
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

# A run's own review capacity is its 'capacity_share' (bench/robustness.py FAMILY_CAPACITY);
# this only for a run written without it.
CAPACITY_SHARE_IF_ABSENT = 0.10


def _by_world(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["world"]: w for w in run["worlds"]}


def summary(run: dict[str, Any]) -> list[str]:
    """The run's worst figures, LOSO minima and pooled honest rates, as lines."""
    worlds = run["worlds"]
    capacity_share = run.get("capacity_share", CAPACITY_SHARE_IF_ABSENT)
    ap = [w["average_precision"] for w in worlds]
    lines = [
        f"worst AP {min(ap):.4f}, mean AP {sum(ap) / len(ap):.4f}, "
        f"worst recall@k {min(w['recall_at_k'] for w in worlds):.3f}, "
        f"worst never-labelled {min(w['never_labelled_recall_at_k'] for w in worlds):.3f}, "
        f"largest flagged share {max(w['flagged_share'] for w in worlds):.3f}"
    ]
    lowest: dict[str, tuple[float, str]] = {}
    for w in worlds:
        for scheme, value in w["leave_one_scheme_out"].items():
            recall = value["without_its_labels"]
            if scheme not in lowest or recall < lowest[scheme][0]:
                lowest[scheme] = (recall, w["world"])
    ordered = sorted(lowest.items(), key=lambda item: item[1][0])
    lines.append("LOSO min: " + ", ".join(f"{s} {v:.3f} ({w})" for s, (v, w) in ordered))
    pooled: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for w in worlds:
        for pattern, value in w["honest_false_positives"].items():
            rate, n = value["in_capacity_rate"], value["honest_invoices"]
            if n and not math.isnan(rate):
                pooled[pattern][0] += rate * n
                pooled[pattern][1] += n
    lines.append(
        "honest in capacity, pooled: "
        + ", ".join(f"{p} {a / n:.3f} ({n:.0f})" for p, (a, n) in pooled.items() if n)
    )
    for suffix, label in (("", "all providers"), ("_clean_provider", "providers with no scheme")):
        over = [
            f"{p} {w['world']} {v['in_capacity_rate' + suffix]:.3f} "
            f"({v['honest_invoices' + suffix]})"
            for w in worlds
            for p, v in w["honest_false_positives"].items()
            if v.get("honest_invoices" + suffix)
            and v["in_capacity_rate" + suffix] > capacity_share
            and p not in ("all_honest", "no_pattern")
        ]
        lines.append(f"honest patterns over {capacity_share} by world, {label}: " + ", ".join(over))
    return lines


def main(paths: list[str]) -> None:
    runs = [json.loads(Path(path).read_text()) for path in paths]
    print("world | " + " | ".join(paths))
    for name in _by_world(runs[0]):
        cells = []
        for run in runs:
            w = _by_world(run).get(name)
            cells.append(
                "-"
                if w is None
                else f"AP {w['average_precision']:.3f} R@k {w['recall_at_k']:.3f} "
                f"NL {w['never_labelled_recall_at_k']:.3f}"
            )
        print(name, "|", " | ".join(cells))
    for path, run in zip(paths, runs, strict=True):
        print(f"\n== {path}")
        for line in summary(run):
            print("  " + line)


if __name__ == "__main__":
    main(sys.argv[1:])
