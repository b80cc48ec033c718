"""A report for people: index.html with tables, definitions, provenance and defects, plus PNG figures.

index.html, top to bottom: provenance (weights manifest hash, code commit, date, settings); what
each metric means and which way is better; the means per organelle and per TL modality, each row
of the model beside the same rows of the baselines (metrics/baselines.py) on the same images; per
organelle an example montage and metric-vs-focus plots (metrics/report_figures.py); the defect
findings of `python -m metrics defects` ("none" when none); the problems met while scoring.

The examples are the best, median and worst image by PCC. The baselines' scores for each example
are in its row title, so a good-looking prediction can be read against what copying the input
would score.
"""
from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from preprocessing.layout import SPREAD_SUBDIRS

from .aggregate import AGGREGATE_ORGANELLES, TL_ORDER
from .challenge import ALL_METRICS, LOWER_IS_BETTER, METRIC_DEFINITIONS
from .pairing import ImageRecord
from .report_figures import BASELINE_LABELS, ExampleRow, example_figure, focus_figure, load_panel, save
from .report_provenance import Provenance
from .score import ScoreRun
from .table import counts

# Filled in by the page's own script once every image has loaded or failed: what a headless browser
# check (metrics/report_browser.py, test/test_metrics_report.py) reads back from the DOM.
_IMAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
});
</script>"""
_FINDINGS_SHOWN = 300   # a page a person reads; a full test set can have thousands
_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1500px} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} td:first-child,th:first-child,td:nth-child(2){text-align:left}
tr.model td{background:#eef4ff} .note{color:#555;font-size:90%} img{max-width:100%}"""


@dataclass
class ReportConfig:
    max_side: int = 512
    dpi: int = 100
    title: str = "Light My Cells: local evaluation"


@dataclass
class ReportInputs:
    """What the page shows besides the model's own scores."""
    baselines: dict[str, dict] = field(default_factory=dict)   # baseline name -> its metrics.json
    baselines_note: str = ""                                    # why there are none, when there are none
    provenance: Provenance | None = None
    defects: list | None = None                                 # metrics.defects.scan.DefectRecord
    defects_note: str = ""                                      # why the scan did not run


def pick_examples(scores: list[tuple[str, float]]) -> list[tuple[str, str, float]]:
    """(label, name, PCC) for the best, median and worst image by PCC; fewer when fewer images."""
    ordered = sorted(scores, key=lambda s: (-s[1], s[0]))
    if not ordered:
        return []
    last = len(ordered) - 1
    # Of two images the second is the worst, not a median; one image is only the best.
    picks = [("best", 0), ("median", len(ordered) // 2), ("worst", last)]
    seen, out = set(), []
    for label, index in picks:
        if index not in seen and not (label == "median" and index == last):
            seen.add(index)
            out.append((label, *ordered[index]))
    return out


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4f}"


def _source_label(name: str) -> str:
    return BASELINE_LABELS.get(name, name)


def _table(rows: list[tuple[str, str, Mapping]], first: str) -> str:
    """Rows of (group, source, means); the best source of each group and metric in bold."""
    head = "".join(f"<th>{m} {'↓' if m in LOWER_IS_BETTER else '↑'}</th>" for m in ALL_METRICS)
    best: dict[tuple[str, str], float] = {}
    for group, _, means in rows:
        for m in ALL_METRICS:
            v = means.get(m)
            if v is not None and not math.isnan(v):
                sign = -1 if m in LOWER_IS_BETTER else 1
                best[group, m] = max(best.get((group, m), -math.inf), sign * v)
    body = []
    for group, source, means in rows:
        cells = []
        for m in ALL_METRICS:
            v = means.get(m)
            top = v is not None and not math.isnan(v) and (-1 if m in LOWER_IS_BETTER else 1) * v == best[group, m]
            cells.append(f"<td>{'<b>' if top else ''}{_fmt(v)}{'</b>' if top else ''}</td>")
        kind = ' class="model"' if source == "model" else ""
        body.append(f"<tr{kind}><td>{html.escape(group)}</td><td>{html.escape(source)}</td>{''.join(cells)}</tr>")
    return f"<table class=scores><tr><th>{first}</th><th>source</th>{head}</tr>{''.join(body)}</table>"


def organelle_table(named: Mapping[str, Mapping]) -> str:
    n = counts(next(iter(named.values())))
    rows = [(f"{o} (n={n[o]})", _source_label(source), metrics["agregate"].get(o, {}))
            for o in AGGREGATE_ORGANELLES if n[o] for source, metrics in named.items()]
    return _table(rows, "organelle") if rows else "<p>No image was scored.</p>"


def modality_table(named: Mapping[str, Mapping], organelle: str) -> str:
    rows = []
    for tl in TL_ORDER:
        for source, metrics in named.items():
            means = metrics.get("transmitted_light", {}).get(tl, {}).get(organelle) or {}
            if any(not (isinstance(v, float) and math.isnan(v)) for v in means.values()):
                rows.append((tl, _source_label(source), means))
    return _table(rows, "TL modality") if rows else "<p class=note>No modality information.</p>"


def _scores_by_name(metrics: Mapping, organelle: str) -> dict[str, dict]:
    return {e["image_name"]: e[organelle] for e in metrics["results"] if e.get(organelle)}


def _row_title(label: str, record: ImageRecord, scores: dict, baseline_scores: dict[str, dict]) -> str:
    dz = record.deviation if record.deviation is not None else "?"
    lines = [f"{label}: {record.name}", f"{record.modality or '?'}, |dz| = {dz}",
             "model  " + "  ".join(f"{m} {scores[m]:.3f}" for m in ("PCC", "SSIM", "MAE") if m in scores)]
    for name, s in baseline_scores.items():
        if s:
            lines.append(f"{_source_label(name)}: PCC {s['PCC']:.3f}  SSIM {s['SSIM']:.3f}")
    return "\n".join(lines)


def _spread_panel(prediction: Path | None, organelle: str):
    """The --uncertainty map beside a prediction (OUT/uncertainty/<organelle>-spread/<name>), if any."""
    if prediction is None:
        return None
    path = prediction.parents[2] / SPREAD_SUBDIRS[organelle] / prediction.name
    return load_panel(path, normalise=False) if path.is_file() else None


def _organelle_section(organelle: str, run: ScoreRun, records: dict[str, ImageRecord], named: dict,
                       baselines: dict[str, dict], out: Path, config: ReportConfig) -> str | None:
    scored = {n: s for n, s in _scores_by_name(run.metrics, organelle).items() if n in records}
    if not scored:
        return None
    base_scores = {b: _scores_by_name(m, organelle) for b, m in baselines.items()}
    rows = []
    for label, name, _ in pick_examples([(n, s["PCC"]) for n, s in scored.items()]):
        record = records[name]
        title = _row_title(label, record, scored[name], {b: s.get(name, {}) for b, s in base_scores.items()})
        prediction = record.predictions.get(organelle)
        rows.append(ExampleRow(title, load_panel(record.input_path), load_panel(prediction),
                               load_panel(record.ground_truth.get(organelle)), _spread_panel(prediction, organelle)))
    grid = save(example_figure(organelle, rows, config.max_side), out / f"{organelle}_examples.png", config.dpi)
    model_points = [(records[n].modality, records[n].deviation, s) for n, s in scored.items()]
    base_points = {b: [(records[n].deviation, s) for n, s in by_name.items() if n in records]
                   for b, by_name in base_scores.items()}
    figure = focus_figure(organelle, model_points, base_points)
    parts = [f"<h2 id='{organelle}'>{organelle} ({len(scored)} images)</h2>",
             "<h3>Means per transmitted-light modality</h3>", modality_table(named, organelle),
             "<h3>Examples: best, median and worst image by PCC</h3>",
             f'<a href="{grid.name}"><img src="{grid.name}" alt="{organelle} examples"></a>']
    if figure is None:
        parts.append("<p class=note>No focus information (give --csv) for metric-vs-focus plots.</p>")
    else:
        focus = save(figure, out / f"{organelle}_focus.png", config.dpi)
        parts += ["<h3>Metrics against focus deviation</h3>",
                  f'<a href="{focus.name}"><img src="{focus.name}" alt="{organelle} vs focus"></a>']
    return "\n".join(parts)


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:left'>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def provenance_html(provenance: Provenance | None) -> str:
    if provenance is None:
        return "<p>unknown</p>"
    return _kv_table(provenance.rows())


def definitions_html() -> str:
    items = "".join(f"<li><b>{m}</b> ({'lower' if m in LOWER_IS_BETTER else 'higher'} is better): "
                    f"{html.escape(METRIC_DEFINITIONS[m])}.</li>" for m in ALL_METRICS)
    return (f"<ul>{items}</ul><p class=note>Each image is compared with its ground truth after both are "
            "percentile-normalised separately (p2 -> 0, p99.8 -> 1), exactly as the challenge scores; "
            "tables give means over images. Nucleus and mitochondria get all five metrics, tubulin and "
            "actin PCC and SSIM only.</p>")


def defects_html(records: list | None, note: str) -> str:
    from .defects.report import DETECTORS
    from .defects.scan import summarise

    if records is None:
        return f"<p>Not checked: {html.escape(note)}</p>"
    head = "".join(f"<th>{d}</th>" for d in ("organelle", "route", "images", *DETECTORS, "any", "unreadable"))
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in
                                    (r.organelle, r.route, r.images, *(getattr(r, d) for d in DETECTORS),
                                     r.any, r.errors)) + "</tr>" for r in summarise(records))
    findings = [f"{r.organelle}/{r.name} [{r.route}]: {line}" for r in records if r.report is not None
                for line in r.report.findings]
    findings += [f"{r.organelle}/{r.name}: not checked: {r.error}" for r in records if r.report is None]
    items = "".join(f"<li>{html.escape(f)}</li>" for f in findings[:_FINDINGS_SHOWN]) or "<li>none</li>"
    if len(findings) > _FINDINGS_SHOWN:
        items += (f"<li>... and {len(findings) - _FINDINGS_SHOWN} more (all of them: "
                  "python -m metrics defects --json)</li>")
    return (f"<p class=note>Images with a finding, per detector (metrics/README.md, 'Defects the metrics "
            f"miss'). {html.escape(note)}</p><table><tr>{head}</tr>{rows}</table>"
            f"<h3>Findings ({len(findings)})</h3><ul id='findings'>{items}</ul>")


def write_report(run: ScoreRun, out_dir: str | os.PathLike, config: ReportConfig | None = None,
                 extra: ReportInputs | None = None) -> Path:
    """Write the PNGs and index.html into OUT_DIR; returns the index.html path."""
    config, extra = config or ReportConfig(), extra or ReportInputs()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = run.pairing.by_name()
    named = {"model": run.metrics, **extra.baselines}
    sections = [s for o in AGGREGATE_ORGANELLES
                if (s := _organelle_section(o, run, records, named, extra.baselines, out, config))]
    baselines = ", ".join(_source_label(b) for b in extra.baselines) or f"none ({extra.baselines_note})"
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in run.problems)
    title = html.escape(config.title)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head>
<body><h1>{title}</h1>
<h2>Provenance</h2>{provenance_html(extra.provenance)}
<h2>Metrics</h2>{definitions_html()}
<h2>Means per organelle</h2>
<p class=note>Model rows shaded; baselines on the same images: {html.escape(baselines)}. A constant image
scores PCC 0 but a high SSIM on dark ground truth, so read SSIM beside PCC. Best per organelle in bold.</p>
{organelle_table(named)}
{''.join(sections)}
<h2>Defects</h2>{defects_html(extra.defects, extra.defects_note)}
<h2>Problems ({len(run.problems)})</h2><ul>{problems or '<li>none</li>'}</ul>
{_IMAGE_CHECK}
</body></html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
