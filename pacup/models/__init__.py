"""Joint upsampling networks and the registry of named models.

- :class:`PacJointUpsample`: the network (factors 2, 4, 8, 16; variants ``'full'`` and
  ``'lite'``); :func:`build_model` rebuilds one from its ``config`` dict.
- Registry: :func:`list_models`, :func:`get_entry`, :func:`default_model`,
  :func:`load_model` (by name or ``.safetensors`` path) and :func:`save_model`.
"""

from .network import SUPPORTED_FACTORS, VARIANTS, PacJointUpsample, build_model, count_parameters
from .registry import (
    ModelEntry,
    RandomWeightsWarning,
    default_model,
    file_sha256,
    get_entry,
    list_models,
    load_model,
    save_model,
    weights_dirs,
)

__all__ = [
    "SUPPORTED_FACTORS", "VARIANTS", "ModelEntry", "PacJointUpsample", "RandomWeightsWarning",
    "build_model", "count_parameters", "default_model", "file_sha256", "get_entry", "list_models",
    "load_model", "save_model", "weights_dirs",
]
