"""Public face of the model package: architectures, checkpoints, manifest, model store.

The pieces live in one file each (architectures.py, checkpoint.py, manifest.py); import them from
here (the rest of the project does; the per-file modules may move).
"""
from models.architectures import ARCHITECTURES, build_model, config_to_dict, make_config
from models.checkpoint import (
                               CheckpointError,
                               CheckpointSpec,
                               LoadedCheckpoint,
                               load_checkpoint,
                               read_spec,
                               save_checkpoint,
                               sha256_file,
)
from models.manifest import Manifest, ManifestError, ModelStore, read_partial_manifest, write_manifest

__all__ = [
    "ARCHITECTURES", "build_model", "make_config", "config_to_dict",
    "CheckpointSpec", "CheckpointError", "LoadedCheckpoint", "save_checkpoint", "load_checkpoint",
    "read_spec", "sha256_file",
    "Manifest", "read_partial_manifest", "ManifestError", "ModelStore", "write_manifest",
]
