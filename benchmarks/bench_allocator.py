"""process.py with and without inference/allocator.py's thresholds, side by side, as a ratio.

    python -m benchmarks.bench_allocator [--size 1024] [--repeats 2] [--tta none]

Writes one synthetic bright-field image (no pixel size: run at the model scale), runs process.py on
it alternately with the glibc defaults (LMC_MALLOC_DEFAULTS=1) and with the raised thresholds, and
prints wall, user and system seconds and peak RSS per run, the median ratio, and whether the four
outputs are identical.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]


def _run(input_dir: Path, out: Path, tta: str, defaults: bool) -> dict:
    env = dict(os.environ, LMC_MALLOC_DEFAULTS="1" if defaults else "0")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "process.py"), "--input", str(input_dir), "--output", str(out),
                    "--tta", tta, "--quiet"], check=True, env=env, cwd=REPO, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": time.perf_counter() - start, "user": after.ru_utime - before.ru_utime,
            "sys": after.ru_stime - before.ru_stime, "rss_gb": after.ru_maxrss / 1e6}


def _outputs(out: Path) -> list[np.ndarray]:
    return [tifffile.imread(p) for p in sorted(out.glob("images/*/*.tiff"))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--tta", default="none")
    args = p.parse_args(argv)
    from preprocessing.ome_io import write_ome_tiff
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        image = rng.normal(30000, 3000, (args.size, args.size)).clip(0, 65535).astype(np.uint16)
        write_ome_tiff(tmp / "in" / "image_BF.ome.tiff", image, channel_name="BF")
        rows = {"glibc defaults": [], "raised thresholds": []}
        for r in range(args.repeats):
            for label, defaults in (("glibc defaults", True), ("raised thresholds", False)):
                rows[label].append(_run(tmp / "in", tmp / f"{label[:3]}{r}", args.tta, defaults))
        same = all(np.array_equal(a, b) for a, b in zip(_outputs(tmp / "gli0"), _outputs(tmp / "rai0")))
    print(f"{args.size}x{args.size} BF, --tta {args.tta}, {args.repeats} run(s) each, alternating "
          "(peak RSS is the largest child so far)")
    for label, runs in rows.items():
        for run in runs:
            print(f"  {label:18s} wall {run['wall']:6.1f} s  user {run['user']:6.1f} s  sys {run['sys']:6.1f} s  "
                  f"peak RSS {run['rss_gb']:.2f} GB")
    ratio = statistics.median(r["wall"] for r in rows["glibc defaults"]) / statistics.median(
        r["wall"] for r in rows["raised thresholds"])
    print(f"median wall-time ratio defaults / raised: {ratio:.2f}x; outputs identical: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
