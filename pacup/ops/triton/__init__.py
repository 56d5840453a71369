"""Fused Triton kernels for PAC (forward and backward), registered as ``torch.ops.pacup``
operators. :mod:`pacup.ops.gpu` routes CUDA calls here; CPU tensors run the same kernels
under Triton's interpreter (for tests). Needs ``triton`` only when a kernel runs."""

from .ops import pac_conv2d, pac_conv_transpose2d

__all__ = ["pac_conv2d", "pac_conv_transpose2d"]
