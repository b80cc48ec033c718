"""The benchmark's summary as tables: plain text for the terminal, or Markdown for the README."""
from __future__ import annotations

import math

from metrics.challenge import LOWER_IS_BETTER
from metrics.defects import DETECTORS

_BASELINE_LABEL = {"constant": "constant", "tl_input": "TL input"}


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.{digits}f}"


def _interval(d: dict) -> str:
    return f"{_f(d['mean'])} [{_f(d['low'])}, {_f(d['high'])}]"


def _render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def _arrow(metric: str) -> str:
    return f"{metric} {'↓' if metric in LOWER_IS_BETTER else '↑'}"


def main_table(table: dict, markdown: bool = False) -> str:
    """Organelle x metric: model, baselines, interval vs the better baseline, verdict, ceilings."""
    ceilings = sorted({c for rows in table.values() for row in rows.values() for c in row["ceilings"]})
    header = ["organelle (images, studies)", "metric", "model", "constant", "TL input",
              "model − better baseline [95 % CI]", "verdict", *(f"ceiling {c}" for c in ceilings)]
    rows = []
    for organelle, metrics in table.items():
        first = next(iter(metrics.values()))
        label = f"{organelle} ({first['n']}, {first['studies']})"
        for metric, row in metrics.items():
            diff = f"{_interval(row['difference'])} vs {_BASELINE_LABEL[row['better_baseline']]}"
            rows.append([label, _arrow(metric), _f(row["model"]), _f(row["constant"]), _f(row["tl_input"]),
                         diff, row["verdict"], *(_f(row["ceilings"].get(c)) for c in ceilings)])
            label = ""
    return _render(header, rows, markdown)


def grouped_table(groups: dict, title: str, markdown: bool = False) -> str:
    """Group (modality or deviation) x organelle x metric: model, better baseline, interval."""
    header = [title, "organelle", "metric", "images", "model", "better baseline",
              "model − baseline [95 % CI]", "verdict"]
    rows = []
    for group, table in groups.items():
        for organelle, metrics in table.items():
            for metric, row in metrics.items():
                rows.append([str(group), organelle, _arrow(metric), str(row["n"]), _f(row["model"]),
                             f"{_f(row[row['better_baseline']])} ({_BASELINE_LABEL[row['better_baseline']]})",
                             _interval(row["difference"]), row["verdict"]])
    return _render(header, rows, markdown)


def defect_table(defects: dict, markdown: bool = False) -> str:
    seen = {k for routes in defects.values() for c in routes.values() for k in c}
    kinds = [k for k in (*DETECTORS, "error") if k in seen]
    header = ["organelle", "route", "images", "with findings", *kinds]
    rows = [[o, route, str(c["images"]), str(c["with findings"]), *(str(c.get(k, 0)) for k in kinds)]
            for o, routes in defects.items() for route, c in sorted(routes.items())]
    return _render(header, rows, markdown) if rows else "(no defect scan)"


def speed_table(speed: dict, markdown: bool = False) -> str:
    header = ["modality", "images", "total s", "median s/image", "max s/image", "s per megapixel"]
    rows = [[m, str(s["images"]), _f(s["total_s"], 0), _f(s["median_s"], 1), _f(s["max_s"], 1),
             _f(s["s_per_megapixel"], 1)] for m, s in speed.items()]
    return _render(header, rows, markdown) if rows else "(no timings)"


def report_text(summary: dict, name: str, markdown: bool = False) -> str:
    b = summary["bootstrap"]
    head = (f"{name}: {summary['images']} TL images from {summary['studies']} studies; 95 % intervals by "
            f"a paired bootstrap over {b['clusters']} ({b['resamples']} resamples). ↓ lower is better, "
            "↑ higher is better; a verdict needs the interval to exclude 0.")
    parts = [head, "", main_table(summary["overall"], markdown), "",
             "per modality:", grouped_table(summary["by_modality"], "modality", markdown), "",
             "per focus deviation |image_z - best_z|:",
             grouped_table(summary["by_deviation"], "deviation", markdown), "",
             "defect findings (images with a finding, per detector):", defect_table(summary["defects"], markdown),
             "", "seconds per image (one process.py run each, model loading included):",
             speed_table(summary["speed"], markdown)]
    return "\n".join(parts)
