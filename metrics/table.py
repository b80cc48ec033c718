"""Plain-text tables of a metrics.json for the terminal: organelle rows, metric columns."""
from __future__ import annotations

import math
from collections.abc import Mapping

from .aggregate import AGGREGATE_ORGANELLES, TL_ORDER
from .challenge import ALL_METRICS, LOWER_IS_BETTER

_HEADER_NOTE = "(lower is better: " + ", ".join(m for m in ALL_METRICS if m in LOWER_IS_BETTER) + ")"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4f}"


def _grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def counts(metrics: Mapping) -> dict[str, int]:
    """Images with a score, per organelle."""
    return {o: sum(1 for e in metrics["results"] if e.get(o)) for o in AGGREGATE_ORGANELLES}


def format_summary(metrics: Mapping, title: str = "") -> str:
    """Mean per organelle, then per focus deviation, then per modality."""
    n = counts(metrics)
    parts = [f"{title} {_HEADER_NOTE}".strip()]
    rows = [[o, str(n[o]), *(_fmt(metrics["agregate"].get(o, {}).get(m)) for m in ALL_METRICS)]
            for o in AGGREGATE_ORGANELLES]
    parts.append(_grid(["organelle", "n", *ALL_METRICS], rows))
    rows = [[f"{o} |dz|={d}", *(_fmt(v.get(m)) for m in ALL_METRICS)]
            for o in AGGREGATE_ORGANELLES for d, v in sorted(metrics.get("z_deviation", {}).get(o, {}).items(),
                                                             key=lambda kv: int(kv[0]))]
    parts.append("per focus deviation |image_z - best_z|:")
    parts.append(_grid(["organelle", *ALL_METRICS], rows) if rows else "  (no focus information)")
    rows = [[f"{o} {tl}", *(_fmt(v.get(m)) for m in ALL_METRICS)]
            for o in AGGREGATE_ORGANELLES for tl in TL_ORDER
            if (v := metrics.get("transmitted_light", {}).get(tl, {}).get(o))
            and not all(isinstance(x, float) and math.isnan(x) for x in v.values())]
    parts.append("per transmitted-light modality:")
    parts.append(_grid(["organelle", *ALL_METRICS], rows) if rows else "  (no modality information)")
    return "\n".join(parts)


def format_comparison(named: Mapping[str, Mapping]) -> str:
    """Organelle x source rows (a model beside its baselines), metric columns."""
    rows = []
    for organelle in AGGREGATE_ORGANELLES:
        for source, metrics in named.items():
            means = metrics["agregate"].get(organelle)
            if means:
                rows.append([organelle, source, *(_fmt(means.get(m)) for m in ALL_METRICS)])
    return f"side by side {_HEADER_NOTE}\n" + _grid(["organelle", "source", *ALL_METRICS], rows)
