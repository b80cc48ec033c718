"""Look at a report as a browser shows it: headless Chromium, a screenshot and the DOM after load.

    python -m metrics.report_browser REPORT/index.html --screenshot shot.png [--window-size 1300,1800]

prints how many of the page's images loaded (the page's own script counts them into
<body data-images="ok/total">) and writes the screenshot, reduced to a 128-colour palette so it
is small enough to keep in the repository. Needs a `chromium` (Debian: apt-get install chromium).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# --no-sandbox: the sandbox refuses to start as root (containers); the page is our own file.
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files")
_TIMEOUT_S = 120


def find_chromium() -> str | None:
    """The first Chromium on PATH, or the one $CHROMIUM names; None when there is none."""
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named)
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _run(args: list[str]) -> str:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary found (install chromium or set CHROMIUM)")
    done = subprocess.run([binary, *_FLAGS, *args], capture_output=True, text=True, timeout=_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def dump_dom(index: Path) -> str:
    """The DOM after the load event (the virtual-time budget lets the page's script run first)."""
    return _run(["--dump-dom", "--virtual-time-budget=5000", index.resolve().as_uri()])


def images_loaded(dom: str) -> tuple[int, int]:
    """(loaded, total) as the page's script recorded them; ValueError when the script did not run."""
    match = re.search(r'data-images="(\d+)/(\d+)"', dom)
    if match is None:
        raise ValueError("the page did not record its images (data-images missing: did its script run?)")
    return int(match[1]), int(match[2])


def screenshot(index: Path, png: Path, window_size: tuple[int, int] = (1300, 1800), palette: bool = True) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--screenshot={png.resolve()}", f"--window-size={window_size[0]},{window_size[1]}",
          "--virtual-time-budget=5000", index.resolve().as_uri()])
    if palette:   # a 128-colour PNG of a page of text and plots is ~4x smaller and looks the same
        from PIL import Image
        with Image.open(png) as image:
            reduced = image.convert("RGB").quantize(colors=128)
        reduced.save(png, optimize=True)
    return png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m metrics.report_browser", description=__doc__.split("\n\n")[0])
    p.add_argument("index", type=Path, help="the report's index.html")
    p.add_argument("--screenshot", type=Path, help="write a PNG of the page here")
    p.add_argument("--window-size", default="1300,1800", help="WIDTH,HEIGHT in px (default %(default)s)")
    args = p.parse_args(argv)
    try:
        if not args.index.is_file():
            raise FileNotFoundError(f"{args.index}: no such file")
        width, height = (int(v) for v in args.window_size.split(","))
        loaded, total = images_loaded(dump_dom(args.index))
        print(f"images loaded: {loaded}/{total}")
        if args.screenshot:
            shot = screenshot(args.index, args.screenshot, (width, height))
            print(f"screenshot: {shot} ({shot.stat().st_size // 1024} KiB)")
    except (FileNotFoundError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if loaded == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
