"""Inference: sliding windows, TTA, routing; `predict` and `predict_file` are the Python API."""


def __getattr__(name: str):
    # Lazy: `import inference.settings` (process.py --help) must not import torch and the models.
    if name in ("predict", "predict_file"):
        from inference import api
        return getattr(api, name)
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
