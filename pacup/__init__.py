"""pacup: RGB-guided joint upsampling of depth maps and optical flow with pixel-adaptive
convolutions.

    import pacup
    depth = pacup.upsample_depth(low_depth, rgb)      # (H, W) float32, NaN = no information
    flow = pacup.upsample_flow(low_flow, rgb)         # (H, W, 2) float32, full-res pixels

See :mod:`pacup.pipeline` for the rules (sizes, invalid pixels, tiling, devices).
"""

import importlib

__version__ = "0.1.0"

# The public names load on first use, so that `pacup --version` and `pacup --help` do not
# pay for importing torch.
_LAZY = {
    "InputError": "errors", "ModelFileError": "errors", "ModelNotAvailableError": "errors", "PacupError": "errors",
    "list_models": "models", "load_model": "models",
    "resolve_factor": "pipeline", "upsample_depth": "pipeline", "upsample_depth_batch": "pipeline",
    "upsample_flow": "pipeline",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pacup' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
