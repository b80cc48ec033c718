"""The routing manifest (weights/manifest.json) and the per-process model store.

    {"version": 1,
     "checkpoints": {"<name>": {"file": "<path relative to the manifest's folder>", "sha256": "<hex>"}},
     "routes": {"BF": {"nucleus": ["<name>", ...], "mitochondria": [...], "tubulin": [...], "actin": [...]},
                "PC": {...}, "DIC": {...}},
     "fallback_modality": "BF"}

A route lists one or more checkpoints (several = average their predictions). It may point to a
checkpoint trained on another modality (e.g. DIC -> actin served by a BF model); what matters is
that the checkpoint predicts the organelle. An image whose modality is unknown or missing is
routed as `fallback_modality`.

`Manifest.load` validates everything up front so a broken weights folder fails at start-up with
one clear message, not on the 200th image: JSON shape, all 12 (modality, organelle) pairs present
and non-empty, every name defined, every file present with the recorded sha256, every spec
readable and predicting the organelles it is routed to.
"""
from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import torch

from models.checkpoint import CheckpointError, CheckpointSpec, LoadedCheckpoint, load_checkpoint, read_spec, sha256_file
from preprocessing.atomic_write import write_json
from preprocessing.ome_io import MODALITIES, ORGANELLES

MANIFEST_VERSION = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and what is wrong."""


class Manifest:
    def __init__(self, path: Path, checkpoints: dict[str, dict[str, str]],
                 routes: dict[str, dict[str, list[str]]], fallback_modality: str,
                 specs: dict[str, CheckpointSpec]):
        self.path = path
        self.root = path.parent
        self.checkpoints = checkpoints
        self.routes = routes
        self.fallback_modality = fallback_modality
        self.specs = specs

    @classmethod
    def load(cls, path: str | os.PathLike, *, check_hashes: bool = True) -> Manifest:
        """Read and validate; `check_hashes=False` skips hashing the files (faster, less safe)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(f"{path}: manifest not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ManifestError(f"{path}: not a readable JSON manifest: {err}") from err

        def fail(reason: str) -> ManifestError:
            return ManifestError(f"{path}: {reason}")

        if not isinstance(data, dict):
            raise fail("top level must be a JSON object")
        if data.get("version") != MANIFEST_VERSION:
            raise fail(f"version must be {MANIFEST_VERSION}, got {data.get('version')!r}")
        checkpoints, routes = data.get("checkpoints"), data.get("routes")
        fallback = data.get("fallback_modality")
        if not isinstance(checkpoints, dict) or not checkpoints:
            raise fail("'checkpoints' must be a non-empty object {name: {file, sha256}}")
        if not isinstance(routes, dict):
            raise fail("'routes' must be an object {modality: {organelle: [names]}}")
        if fallback not in MODALITIES:
            raise fail(f"fallback_modality must be one of {MODALITIES}, got {fallback!r}")
        extra = sorted(set(routes) - set(MODALITIES))
        if extra:
            raise fail(f"routes for unknown modalities {extra}; expected {MODALITIES}")

        clean: dict[str, dict[str, str]] = {}
        for name, entry in checkpoints.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) \
                    or not isinstance(entry.get("sha256"), str):
                raise fail(f"checkpoint {name!r} needs string fields 'file' and 'sha256'")
            if Path(entry["file"]).is_absolute():
                raise fail(f"checkpoint {name!r}: file must be relative to {path.parent}")
            digest = entry["sha256"].lower()
            if not _SHA256.match(digest):
                raise fail(f"checkpoint {name!r}: sha256 {entry['sha256']!r} is not 64 hex digits")
            clean[name] = {"file": entry["file"], "sha256": digest}

        clean_routes: dict[str, dict[str, list[str]]] = {}
        for modality in MODALITIES:
            by_organelle = routes.get(modality)
            if not isinstance(by_organelle, dict):
                raise fail(f"no routes for modality {modality}")
            extra = sorted(set(by_organelle) - set(ORGANELLES))
            if extra:
                raise fail(f"routes[{modality}] has unknown organelles {extra}")
            clean_routes[modality] = {}
            for organelle in ORGANELLES:
                names = by_organelle.get(organelle)
                if not isinstance(names, list) or not names \
                        or not all(isinstance(n, str) for n in names):
                    raise fail(f"pair ({modality}, {organelle}) does not resolve: needs a "
                               "non-empty list of checkpoint names")
                unknown = [n for n in names if n not in clean]
                if unknown:
                    raise fail(f"pair ({modality}, {organelle}) names undefined checkpoints {unknown}")
                clean_routes[modality][organelle] = list(names)

        specs: dict[str, CheckpointSpec] = {}
        for name, entry in clean.items():
            file = path.parent / entry["file"]
            if not file.is_file():
                raise fail(f"checkpoint {name!r}: file {file} does not exist")
            if check_hashes:
                actual = sha256_file(file)
                if actual != entry["sha256"]:
                    raise fail(f"checkpoint {name!r}: sha256 of {file} is {actual}, the manifest "
                               f"says {entry['sha256']} (file changed or corrupt)")
            try:
                specs[name] = read_spec(file)
            except CheckpointError as err:
                raise fail(f"checkpoint {name!r}: {err}") from err

        for modality, by_organelle in clean_routes.items():
            for organelle, names in by_organelle.items():
                for n in names:
                    if organelle not in specs[n].organelles:
                        raise fail(f"pair ({modality}, {organelle}) routes to {n!r}, which "
                                   f"predicts only {specs[n].organelles}")
        return cls(path, clean, clean_routes, fallback, specs)

    def effective_modality(self, modality: str | None) -> tuple[str, bool]:
        """(modality whose routes are used, True if that is the fallback for an unknown/None one)."""
        key = modality.strip().upper() if isinstance(modality, str) else None
        if key in self.routes:
            return key, False
        return self.fallback_modality, True

    def resolve(self, modality: str | None, organelle: str) -> list[str]:
        """Checkpoint names for this pair (more than one = ensemble average)."""
        if organelle not in ORGANELLES:
            raise ValueError(f"unknown organelle {organelle!r}; expected one of {ORGANELLES}")
        used, _ = self.effective_modality(modality)
        return list(self.routes[used][organelle])

    def checkpoint_path(self, name: str) -> Path:
        if name not in self.checkpoints:
            raise ManifestError(f"{self.path}: no checkpoint named {name!r}")
        return self.root / self.checkpoints[name]["file"]

    def spec(self, name: str) -> CheckpointSpec:
        """A checkpoint's spec (read at validation) without loading its weights."""
        self.checkpoint_path(name)
        return self.specs[name]


def read_partial_manifest(path: str | os.PathLike) -> dict:
    """A manifest being built up export by export (training.export), as a dict: not yet every
    (modality, organelle) pair routed, so not validated like Manifest.load; a missing file is an
    empty manifest of this version. ManifestError when it is not a manifest at all."""
    path = Path(path)
    if not path.exists():
        return {"version": MANIFEST_VERSION, "checkpoints": {}, "routes": {}, "fallback_modality": "BF"}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: existing manifest is not readable JSON ({exc}); fix or remove it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints", {}), dict) \
            or not isinstance(data.get("routes", {}), dict):
        raise ManifestError(f"{path}: existing manifest is not a manifest object; fix or remove it")
    if data.setdefault("version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise ManifestError(f"{path}: manifest version {data['version']!r}, this code writes {MANIFEST_VERSION}")
    data.setdefault("checkpoints", {})
    data.setdefault("routes", {})
    data.setdefault("fallback_modality", "BF")
    return data


def write_manifest(path: str | os.PathLike, checkpoints: dict[str, str],
                   routes: dict[str, dict[str, list[str]]], *,
                   fallback_modality: str = "BF") -> Manifest:
    """Write a manifest for checkpoint files ({name: file relative to the manifest's folder}),
    hashing each file, and return it validated. Atomic: an invalid manifest is never written."""
    path = Path(path)
    data: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "checkpoints": {name: {"file": str(Path(file).as_posix()),
                               "sha256": sha256_file(path.parent / file)}
                        for name, file in checkpoints.items()},
        "routes": routes,
        "fallback_modality": fallback_modality,
    }
    write_json(path, data, check=Manifest.load)   # file paths resolve against the same folder
    return Manifest.load(path, check_hashes=False)


class ModelStore:
    """Loads each checkpoint once per process and hands out the same model to every organelle
    and image that uses it (a 4-organelle pix2pix is one model in memory, run once per window)."""

    def __init__(self, manifest: Manifest, device: torch.device | str = "cpu"):
        self.manifest = manifest
        self.device = torch.device(device)
        self._cache: dict[str, LoadedCheckpoint] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> LoadedCheckpoint:
        with self._lock:
            if name not in self._cache:
                path = self.manifest.checkpoint_path(name)
                loaded = load_checkpoint(path, name=name, map_location="cpu")
                expected = self.manifest.checkpoints[name]["sha256"]
                if loaded.sha256 != expected:
                    raise CheckpointError(f"{path}: sha256 {loaded.sha256} differs from the "
                                          f"manifest's {expected} (file changed after start-up)")
                loaded.model.to(self.device).eval()
                self._cache[name] = loaded
            return self._cache[name]

    def for_pair(self, modality: str | None, organelle: str) -> list[LoadedCheckpoint]:
        return [self.get(n) for n in self.manifest.resolve(modality, organelle)]

    @property
    def loaded(self) -> tuple[str, ...]:
        return tuple(self._cache)
