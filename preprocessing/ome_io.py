"""Reading and writing the challenge's OME-TIFF files.

One transmitted-light (TL) image in, one organelle image out, both 2D planes stored as TCZYX with
T = C = Z = 1. The strict reader `read_ome_tiff` is forgiving about layout (plain 2D TIFFs, singleton
axes, uint8/uint16/float) and strict about content: anything that is not one 2D plane of finite
numbers raises `OmeReadError` naming the file and the reason (inference/inputs.py reduces such
files to a plane instead). `read_tiff` reads a file once with all its metadata; the pixel size
follows preprocessing/pixel_size.py's precedence (OME > ImageJ > resolution tags). Metadata that
is missing or odd never raises; it comes back as None so the caller can fall back and log.
"""
from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from preprocessing.atomic_write import atomic_target
from preprocessing.pixel_size import ome_pixel_size, pixel_size_from

log = logging.getLogger(__name__)

MODALITIES = ("BF", "PC", "DIC")
ORGANELLES = ("nucleus", "mitochondria", "tubulin", "actin")
# Names used in the data set's file names (image_<id>_<Nucleus>.ome.tiff) and output channel names.
ORGANELLE_FILE_NAMES = {"nucleus": "Nucleus", "mitochondria": "Mitochondria",
                        "tubulin": "Tubulin", "actin": "Actin"}

# Words that name a modality in Channel/@Name or @Fluor, after upper-casing and splitting at every
# separator and letter/digit boundary ("Phase_Contrast", "Ph2", "DIC-TL", "TL DIC", "Nomarski").
_MODALITY_WORDS = {
    "BF": "BF", "BRIGHT": "BF", "BRIGHTFIELD": "BF",
    "PC": "PC", "PH": "PC", "PHC": "PC", "PHASE": "PC", "PHASECONTRAST": "PC", "ZERNIKE": "PC",
    "DIC": "DIC", "NOMARSKI": "DIC", "DIFFERENTIAL": "DIC", "DIFFERENTIALINTERFERENCECONTRAST": "DIC",
}
# Words that say "transmitted light" without naming which kind.
_TL_WORDS = {"TL", "TRANS", "TRANSMITTED", "TRANSMISSION"}
# TIFF resolution tags are ratios of uint32: pixels per cm outside this range round to 0 or overflow.
_RESOLUTION_RANGE = (1e-6, 4e9)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class OmeReadError(ValueError):
    """A file that cannot be turned into one 2D image; the message names the file and why."""


@dataclass
class OmeImage:
    """One 2D plane and what its metadata says about it."""

    path: Path
    array: np.ndarray                 # float32, H×W, finite
    modality: str | None              # "BF" | "PC" | "DIC", or None when metadata does not say
    pixel_size_um: tuple[float, float] | None   # (y, x) in µm, or None when unknown
    ome_xml: str | None               # the original OME-XML, kept for provenance
    dtype: np.dtype                   # the stored dtype before conversion to float32

    @property
    def shape(self) -> tuple[int, int]:
        return self.array.shape  # type: ignore[return-value]


def _words(name: str) -> list[str]:
    return re.findall(r"[A-Z]+|[0-9]+", str(name).upper())


def normalise_modality(name: str | None) -> str | None:
    """Map a free-text channel name to BF/PC/DIC, or None when it is not recognisable (or names
    two modalities at once). Case and separators do not matter: "phase-contrast", "Ph2", "TL DIC"."""
    if not name:
        return None
    words = _words(name)
    found = {_MODALITY_WORDS[w] for w in words + ["".join(words)] if w in _MODALITY_WORDS}
    return found.pop() if len(found) == 1 else None


def is_transmitted_light(name: str | None) -> bool:
    """True for a channel name that says it is the TL channel ("BF", "DIC", "TL", "Trans")."""
    return bool(name) and (normalise_modality(name) is not None or bool(_TL_WORDS & set(_words(name))))


def channel_names(ome_xml: str | None) -> list[str | None]:
    """Channel/@Name (else @Fluor) of the first image's channels in order; [] when unknown."""
    root = _parse(ome_xml)
    pixels = _find_pixels(root) if root is not None else None
    if pixels is None:
        return []
    return [c.get("Name") or c.get("Fluor") for c in pixels if _local(c.tag) == "Channel"]


def _parse(ome_xml: str | None) -> ET.Element | None:
    if not ome_xml:
        return None
    for text in (ome_xml, _XML_DECLARATION.sub("", ome_xml, count=1)):
        try:  # a declaration naming another encoding than the text's can stop the parser: retry without
            return ET.fromstring(text)
        except (ET.ParseError, ValueError):
            continue
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_pixels(root: ET.Element) -> ET.Element | None:
    for image in root:
        if _local(image.tag) != "Image":
            continue
        for child in image:
            if _local(child.tag) == "Pixels":
                return child
    return None


def parse_ome_metadata(ome_xml: str | None) -> tuple[str | None, tuple[float, float] | None]:
    """(modality, (pixel_size_y_um, pixel_size_x_um)) from OME-XML; None for what is absent or odd."""
    root = _parse(ome_xml)
    if root is None:
        return None, None
    pixels = _find_pixels(root)
    if pixels is None:
        return None, None
    modality = None
    for channel in pixels:
        if _local(channel.tag) != "Channel":
            continue
        modality = normalise_modality(channel.get("Name")) or normalise_modality(channel.get("Fluor"))
        if modality:
            break
    return modality, _pixel_size(pixels)


def _pixel_size(pixels: ET.Element) -> tuple[float, float] | None:
    return ome_pixel_size(pixels.attrib)


@dataclass
class RawTiff:
    """The first series of a TIFF exactly as stored, and the metadata around it."""

    data: np.ndarray
    axes: str                          # tifffile's labels (upper case), "?" each when unknown
    ome_xml: str | None
    alpha_samples: int = 0             # alpha samples (ExtraSamples 1 or 2), last along the S axis
    imagej: dict | None = None         # ImageJ's description (unit, spacing, ...) when present
    resolution: tuple | None = None    # (x pixels per unit, y pixels per unit, ResolutionUnit value)
    tifffile_notes: list[str] = field(default_factory=list)   # what tifffile logged while reading


# Files bigger than this are refused before decoding: 2^28 elements of float64 are already 2 GB.
MAX_SERIES_ELEMENTS = 2 ** 28


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _tifffile_log_captured() -> Iterator[list[str]]:
    """tifffile logs its fallbacks (a broken OME header, a missing page) at ERROR level even when
    it then reads the file fine; collect them instead, so the caller decides what they mean."""
    logger, handler = logging.getLogger("tifffile"), _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def read_tiff(path: str | os.PathLike) -> RawTiff:
    """The file's first series with its metadata. Raises OmeReadError (naming the file and, when
    tifffile logged something on the way, what it said) for anything tifffile cannot read."""
    path = Path(path)
    with _tifffile_log_captured() as notes:
        try:
            raw = _read(path)
        except OmeReadError as exc:
            raise OmeReadError(_with_notes(str(exc), notes)) from exc.__cause__
        except Exception as exc:  # tifffile raises many kinds for truncated or foreign files
            raise OmeReadError(_with_notes(f"{path}: unreadable TIFF ({type(exc).__name__}: {exc})",
                                           notes)) from exc
    raw.tifffile_notes = list(notes)
    for note in notes:   # the file was read: tifffile's complaint is a detail, not an error
        log.info("%s: tifffile: %s", path.name, note)
    return raw


def _with_notes(message: str, notes: list[str]) -> str:
    return message + (f" [tifffile: {'; '.join(notes)}]" if notes else "")


def _read(path: Path) -> RawTiff:
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise OmeReadError(f"{path}: TIFF holds no image series")
        series = tif.series[0]
        elements = int(np.prod(series.shape, dtype=np.float64))
        if elements > MAX_SERIES_ELEMENTS:
            raise OmeReadError(f"{path}: {series.shape} holds {elements} values, over the bound of "
                               f"{MAX_SERIES_ELEMENTS}")
        data = np.asarray(series.asarray())
        axes = series.axes.upper()
        page = tif.pages[0]
        tags = page.tags
        resolution = None
        if "XResolution" in tags and "YResolution" in tags:
            unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 2  # TIFF default: inch
            resolution = (_ratio(tags["XResolution"].value), _ratio(tags["YResolution"].value), int(unit))
        raw = RawTiff(data=data, axes=axes if len(axes) == data.ndim else "?" * data.ndim,
                      ome_xml=_ome_xml(tif), alpha_samples=_alpha_samples(page),
                      imagej=tif.imagej_metadata if tif.is_imagej else None, resolution=resolution)
    if data.dtype.kind not in "uifb":
        raise OmeReadError(f"{path}: unsupported pixel type {data.dtype}")
    return raw


def _alpha_samples(page) -> int:
    """Trailing extra samples that are alpha (associated or not); unspecified ones (0) are data."""
    kinds = [int(k) for k in (getattr(page, "extrasamples", ()) or ())]
    count = 0
    for kind in reversed(kinds):
        if kind not in (1, 2):
            break
        count += 1
    return count


def _ome_xml(tif: tifffile.TiffFile) -> str | None:
    """tifffile's OME-XML; when it gave up on a description that is not UTF-8 (Latin-1 from an old
    writer), the description's bytes read as Latin-1, which never fails, if they hold OME."""
    if tif.ome_metadata:
        return tif.ome_metadata
    tag = tif.pages[0].tags.get("ImageDescription")
    value = tag.value if tag is not None else None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    return value if isinstance(value, str) and "<OME" in value[:4096] else None


def _ratio(value) -> float | None:
    try:
        num, den = value
        return float(num) / float(den) if den else None
    except (TypeError, ValueError):
        return None


def read_series(path: Path) -> tuple[np.ndarray, str, str | None]:
    """(pixel data, axes labels, OME-XML) of the file's first series, exactly as stored.

    Raises OmeReadError for files tifffile cannot read and for non-numeric pixel types.
    """
    raw = read_tiff(path)
    return raw.data, raw.axes, raw.ome_xml


def squeeze_singletons(data: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Drop every axis of length 1; the axes labels follow."""
    kept = [i for i, n in enumerate(data.shape) if n != 1]
    return data.reshape([data.shape[i] for i in kept]), "".join(axes[i] for i in kept)


def colour_axis(shape: tuple[int, ...], axes: str) -> int | None:
    """The axis holding 3-4 colour samples (labelled S or C), or the last such-sized axis when the
    labels are unknown; None when the array has no colour axis."""
    for i, (n, a) in enumerate(zip(shape, axes)):
        if a in "SC" and n in (3, 4):
            return i
    if axes and axes[-1] == "?" and shape[-1] in (3, 4):
        return len(shape) - 1
    return None


def read_ome_tiff(path: str | os.PathLike) -> OmeImage:
    """Read one 2D plane with its modality, pixel size and OME-XML. Raises OmeReadError."""
    path = Path(path)
    raw = read_tiff(path)
    data, axes, ome_xml = raw.data, raw.axes, raw.ome_xml
    plane, kept = squeeze_singletons(data, axes)
    if plane.ndim < 2:
        raise OmeReadError(f"{path}: not a 2D image (shape {data.shape}, axes {axes})")
    if plane.ndim > 2:
        what = "a colour (RGB) image" if colour_axis(plane.shape, kept) is not None else "a stack"
        raise OmeReadError(f"{path}: {what} with shape {data.shape} (axes {axes}); "
                           "expected one 2D transmitted-light plane")
    array = plane.astype(np.float32)
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise OmeReadError(f"{path}: {bad} pixel(s) are NaN or infinite")
    modality, pixel_size = metadata_of(raw)
    return OmeImage(path=path, array=array, modality=modality, pixel_size_um=pixel_size,
                    ome_xml=ome_xml, dtype=data.dtype)


def metadata_of(raw: RawTiff, notes: list[str] | None = None) -> tuple[str | None, tuple[float, float] | None]:
    """(modality, pixel size) of a read file: the modality from OME, the pixel size by the
    precedence of preprocessing.pixel_size (OME > ImageJ > resolution tags); notes appended."""
    modality, ome_size = parse_ome_metadata(raw.ome_xml)
    size, _, size_notes = pixel_size_from(ome_size, raw.imagej, raw.resolution)
    if notes is not None:
        notes.extend(size_notes)
    return modality, size


def to_uint16(array: np.ndarray) -> np.ndarray:
    """Round and clip to the uint16 range."""
    return np.clip(np.rint(array), 0, 65535).astype(np.uint16)


def write_ome_tiff(path: str | os.PathLike, array: np.ndarray, *, channel_name: str,
                   pixel_size_um: tuple[float, float] | None = None,
                   extra_metadata: dict | None = None, compression: str | None = None,
                   warn: bool = True) -> Path:
    """Write one 2D plane as a TCZYX OME-TIFF, atomically (temp file in the same folder + rename).

    `array` is written in its own dtype (uint16 or float32 are what the challenge uses). The pixel
    size goes into OME `PhysicalSizeX/Y` (µm) and into the TIFF resolution tags as pixels per
    centimetre: those tags hold pixels per unit, the reciprocal of the pixel size. A pixel size
    that either cannot hold (see `output_pixel_size`) is left out of it with a warning (`warn`
    False: the caller already said so), never an exception. `compression` ("zlib" is the codec
    SimpleITK also reads) comes with the horizontal predictor, which halves the size of smooth
    microscopy planes.
    """
    path = Path(path)
    plane = np.asarray(array)
    if plane.ndim != 2:
        raise ValueError(f"{path}: expected a 2D array, got shape {plane.shape}")
    metadata: dict = {"axes": "TCZYX", "Channel": {"Name": [channel_name]}}
    kwargs: dict = {}
    sizes, tags_fit, notes = output_pixel_size(pixel_size_um)
    for note in notes if warn else ():
        log.warning("%s: %s", path.name, note)
    if sizes is not None:
        py, px = sizes
        metadata.update(PhysicalSizeX=px, PhysicalSizeXUnit="µm",
                        PhysicalSizeY=py, PhysicalSizeYUnit="µm")
        if tags_fit:
            kwargs.update(resolution=(1e4 / px, 1e4 / py), resolutionunit="CENTIMETER")
    if extra_metadata:
        metadata.update(extra_metadata)
    if compression:
        kwargs.update(compression=compression, predictor=True)
    with atomic_target(path) as tmp:
        tifffile.imwrite(tmp, plane[None, None, None], ome=True, photometric="minisblack",
                         metadata=metadata, **kwargs)
    return path


def output_pixel_size(pixel_size_um) -> tuple[tuple[float, float] | None, bool, list[str]]:
    """((y, x) µm or None, whether the TIFF resolution tags can hold it, what is left out in words).

    Kept when both are finite and positive as the float32 OME-XML stores them; the resolution tags
    (ratios of uint32 in pixels per cm) need more. An odd pixel size loses metadata, never an image."""
    if pixel_size_um is None:
        return None, False, []
    try:
        py, px = (float(v) for v in pixel_size_um)
    except (TypeError, ValueError):
        return None, False, [f"pixel size {pixel_size_um!r} is not two numbers; omitted from the outputs"]
    with np.errstate(all="ignore"):
        as_stored = np.float32([py, px])
        fits = bool(np.all(np.isfinite(as_stored)) and np.all(as_stored > 0))
        if not fits:
            return None, False, [f"pixel size {py!r} x {px!r} µm is not a finite positive float32; "
                                 "omitted from the outputs"]
        resolution = (1e4 / px, 1e4 / py)
    if all(_RESOLUTION_RANGE[0] <= r <= _RESOLUTION_RANGE[1] for r in resolution):
        return (py, px), True, []
    return (py, px), False, [f"pixel size {py:g} x {px:g} µm does not fit the TIFF resolution tags (a ratio "
                             "of 32-bit integers); written in the outputs' OME-XML only"]


def list_tiffs(folder: str | os.PathLike) -> list[Path]:
    """Every .tif/.tiff file directly inside `folder`, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in (".tif", ".tiff"))


def output_name(input_path: str | os.PathLike) -> str:
    """The output file name for an input: the challenge keeps a TIFF's base name; any other image
    (cells.png) gets its stem with .ome.tiff, since the outputs are OME-TIFFs whatever came in."""
    name = Path(input_path).name
    return name if name.lower().endswith((".tif", ".tiff")) else f"{Path(name).stem}.ome.tiff"
