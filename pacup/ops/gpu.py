"""Dispatch of PAC calls to fused GPU kernels.

``pac_conv2d`` and ``pac_conv_transpose2d`` offer every CUDA call here first, with their
arguments already validated. A function returns None when it does not handle the call (no
Triton, an unsupported option): the PyTorch fast path then runs. Fused kernels live beside
this module and register themselves through ``torch.library``.
"""

from __future__ import annotations


def pac_conv2d(**kwargs):
    """Fused ``pac_conv2d`` for CUDA tensors, or None to fall back."""
    return None


def pac_conv_transpose2d(**kwargs):
    """Fused ``pac_conv_transpose2d`` for CUDA tensors, or None to fall back."""
    return None
