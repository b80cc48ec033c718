"""Local scoring exactly as the Light My Cells challenge scores (see metrics/README.md).

metrics.challenge.score_image(pred, gt, organelle) is the per-image metric; `python -m metrics`
the scorer, ranking, baselines and report.
"""
