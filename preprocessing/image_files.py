"""Reading 2D images that are not TIFF (PNG, JPEG, BMP, GIF, WebP, PNM, JPEG 2000) with Pillow.

People bring screenshots and exports from their own microscopes; the container should give them
four organelle images like for any OME-TIFF. A file comes back as the same `RawTiff` record the
TIFF reader gives (pixels, axes labels, alpha, resolution), so one set of rules
(preprocessing/planes.py, preprocessing/pixel_size.py) turns every format into a plane:
- grey (8- or 16-bit, int32 and float modes kept as stored) is a YX plane; colour is YXS with its
  alpha sample marked, so the plane rules average RGB and drop alpha; palette images are expanded
  to their colours first (the palette indices mean nothing as intensities);
- an animated or multi-page file (GIF, APNG, WebP) is a page stack: the plane rule takes a page;
- the pixel size comes from the file's dots per inch (PNG pHYs, JPEG JFIF), which
  preprocessing/pixel_size.py ignores when it is a display default such as 72 or 96 dpi. Such
  files have no modality: --modality says it, or the manifest's fallback is used.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from preprocessing.ome_io import MAX_SERIES_ELEMENTS, OmeReadError, RawTiff

# Lower case. Formats Pillow reads without plugins or external programs (no PDF/EPS).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".pgm", ".ppm", ".pnm", ".pbm",
                  ".jp2", ".j2k")
_INCH = 2   # TIFF ResolutionUnit INCH: Pillow reports every format's density as dots per inch
# Pillow modes -> what they are for the plane rules. Others (CMYK, YCbCr, LAB, HSV, P) become RGB(A).
_GREY_MODES = {"1", "L", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
_WITH_ALPHA = {"LA": 1, "RGBA": 1, "PA": 1}


def is_image_file_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def read_image_file(path: str | Path) -> RawTiff:
    """The file's pixels as a RawTiff. Raises OmeReadError naming the file and the reason."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Our own bound (below) decides what is too big, before any pixel is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return _raw(path, image)
    except OmeReadError:
        raise
    except UnidentifiedImageError as exc:
        raise OmeReadError(f"{path}: not an image Pillow can read ({exc})") from exc
    except Exception as exc:  # truncated files and decoder errors come in many kinds
        raise OmeReadError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from exc


def _raw(path: Path, image) -> RawTiff:
    frames = int(getattr(image, "n_frames", 1) or 1)
    width, height = image.size
    bands = len(image.getbands())
    elements = width * height * max(bands, 1) * frames
    if elements > MAX_SERIES_ELEMENTS:
        raise OmeReadError(f"{path}: {frames} x {height} x {width} x {bands} values, over the bound of "
                           f"{MAX_SERIES_ELEMENTS}")
    planes = []
    for index in range(frames):
        image.seek(index)
        planes.append(_pixels(image))
    shapes = {p.shape for p in planes}
    if len(shapes) != 1:
        raise OmeReadError(f"{path}: its {frames} frames differ in size or colour ({sorted(shapes)})")
    data, mode = (planes[0] if frames == 1 else np.stack(planes)), _mode_after_expansion(image)
    axes = ("I" if frames > 1 else "") + ("YX" if mode in _GREY_MODES else "YXS")
    dpi = image.info.get("dpi")
    resolution = None
    if dpi and len(dpi) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in dpi):
        resolution = (float(dpi[0]), float(dpi[1]), _INCH)
    return RawTiff(data=data, axes=axes, ome_xml=None, alpha_samples=_WITH_ALPHA.get(mode, 0),
                   resolution=resolution)


def _mode_after_expansion(image) -> str:
    mode = image.mode
    if mode in _GREY_MODES or mode in ("RGB", "RGBA", "LA"):
        return mode
    if mode in ("P", "PA"):
        return "RGBA" if mode == "PA" or "transparency" in image.info else "RGB"
    return "RGB"


def _pixels(image) -> np.ndarray:
    mode = _mode_after_expansion(image)
    if mode != image.mode:
        image = image.convert(mode)
    data = np.asarray(image)
    if data.dtype.byteorder == ">":   # I;16B: native order for the float conversion downstream
        data = data.astype(data.dtype.newbyteorder("="))
    return data
