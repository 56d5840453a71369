"""pacup: RGB-guided joint upsampling of depth maps and optical flow with pixel-adaptive
convolutions.

    import pacup
    depth = pacup.upsample_depth(low_depth, rgb)      # (H, W) float32, NaN = no information
    flow = pacup.upsample_flow(low_flow, rgb)         # (H, W, 2) float32, full-res pixels

See :mod:`pacup.pipeline` for the rules (sizes, invalid pixels, tiling, devices).
"""

__version__ = "0.1.0"

from .errors import InputError, ModelFileError, ModelNotAvailableError, PacupError
from .models import list_models, load_model
from .pipeline import resolve_factor, upsample_depth, upsample_depth_batch, upsample_flow

__all__ = [
    "__version__", "InputError", "ModelFileError", "ModelNotAvailableError", "PacupError", "list_models",
    "load_model", "resolve_factor", "upsample_depth", "upsample_depth_batch", "upsample_flow",
]
