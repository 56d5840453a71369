"""Pixel-adaptive convolutions (Su et al., CVPR 2019).

``pac_conv2d``, ``pac_conv_transpose2d`` and ``pac_pool2d`` (and the modules
``PacConv2d``, ``PacConvTranspose2d``, ``PacPool2d``) are the fast path used everywhere;
:mod:`pacup.ops.reference` holds the unfold-based reference they are tested against.
"""

from . import reference
from .functional import pac_conv2d, pac_conv_transpose2d, pac_pool2d
from .modules import PacConv2d, PacConvTranspose2d, PacPool2d
from .reference import pac_kernel2d

__all__ = [
    "PacConv2d", "PacConvTranspose2d", "PacPool2d",
    "pac_conv2d", "pac_conv_transpose2d", "pac_pool2d", "pac_kernel2d", "reference",
]
