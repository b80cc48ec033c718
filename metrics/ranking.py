"""Rank several scored prediction sets the challenge's way.

Every (organelle, focus deviation, metric) of the z_deviation table is one criterion: 4 organelles x
their metrics (5, 5, 2, 2) x 6 deviations = 84 on the full test set. Per criterion the entries are
ranked (lower MAE/E_dist/C_dist is better, higher PCC/SSIM is better; ties share the best rank,
1-1-3, as grand-challenge ranks; a missing or NaN value ranks last); the final position is the mean
of those ranks, lower is better.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from .aggregate import AGGREGATE_ORGANELLES
from .challenge import LOWER_IS_BETTER, METRICS_BY_ORGANELLE

Criterion = tuple[str, int, str]   # (organelle, deviation, metric)


def criteria_values(metrics: Mapping) -> dict[Criterion, float]:
    """Criterion -> value from one metrics.json's z_deviation table."""
    values = {}
    for organelle in AGGREGATE_ORGANELLES:
        for deviation, means in metrics.get("z_deviation", {}).get(organelle, {}).items():
            for metric in METRICS_BY_ORGANELLE[organelle]:
                if metric in means:
                    values[(organelle, int(deviation), metric)] = float(means[metric])
    return values


@dataclass
class LeaderboardEntry:
    name: str
    position: int
    average_rank: float
    ranks: dict[Criterion, float]


@dataclass
class Leaderboard:
    entries: list[LeaderboardEntry]   # best first
    criteria: list[Criterion]

    def to_json(self) -> dict:
        return {"criteria": [list(c) for c in self.criteria],
                "leaderboard": [{"name": e.name, "position": e.position, "average_rank": e.average_rank,
                                 "ranks": {f"{o}/{d}/{m}": r for (o, d, m), r in e.ranks.items()}}
                                for e in self.entries]}


def rank_criterion(values: list[float], metric: str) -> np.ndarray:
    """Ranks (1 = best) of one criterion's values across entries; NaN ranks last."""
    key = np.array([math.inf if math.isnan(v) else (v if metric in LOWER_IS_BETTER else -v) for v in values])
    return rankdata(key, method="min").astype(float)


def rank_metrics(named: Mapping[str, Mapping]) -> Leaderboard:
    """Leaderboard of named metrics.json dicts, scored on the same test set."""
    if not named:
        raise ValueError("nothing to rank")
    per_entry = {name: criteria_values(m) for name, m in named.items()}
    criteria = sorted({c for values in per_entry.values() for c in values},
                      key=lambda c: (AGGREGATE_ORGANELLES.index(c[0]), c[1], METRICS_BY_ORGANELLE[c[0]].index(c[2])))
    if not criteria:
        raise ValueError("no focus-deviation table in any entry: scores need modality/focus metadata (--csv)")
    names = list(named)
    ranks: dict[str, dict[Criterion, float]] = {n: {} for n in names}
    for criterion in criteria:
        column = rank_criterion([per_entry[n].get(criterion, math.nan) for n in names], criterion[2])
        for name, r in zip(names, column):
            ranks[name][criterion] = float(r)
    averages = [float(np.mean(list(ranks[n].values()))) for n in names]
    positions = rankdata(averages, method="min").astype(int)
    entries = [LeaderboardEntry(n, int(p), a, ranks[n]) for n, p, a in zip(names, positions, averages)]
    entries.sort(key=lambda e: (e.average_rank, e.name))
    return Leaderboard(entries=entries, criteria=criteria)


def format_leaderboard(board: Leaderboard) -> str:
    organelles = [o for o in AGGREGATE_ORGANELLES if any(c[0] == o for c in board.criteria)]
    header = ["#", "name", "avg rank", *(f"{o} avg" for o in organelles)]
    rows = []
    for e in board.entries:
        per_org = [np.mean([r for (o, _, _), r in e.ranks.items() if o == organelle]) for organelle in organelles]
        rows.append([str(e.position), e.name, f"{e.average_rank:.2f}", *(f"{v:.2f}" for v in per_org)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 1 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([f"leaderboard over {len(board.criteria)} criteria (organelle x |dz| x metric)",
                      fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])
