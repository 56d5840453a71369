"""Helpers shared by the command-line tests (generated data, reference results, checks)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FACTOR = 4
LOW_H, LOW_W = 6, 9
H, W = LOW_H * FACTOR, LOW_W * FACTOR


def guide_image(seed: int = 0, height: int = H, width: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def depth_ramp(height: int = LOW_H, width: int = LOW_W, base: float = 1500.0) -> np.ndarray:
    """A smooth, fully valid depth map in millimetres (1500..2300)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return base + 50.0 * x + 30.0 * y


def flow_ramp(height: int = LOW_H, width: int = LOW_W) -> np.ndarray:
    """A smooth, fully valid flow field in low-res pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([0.5 + 0.1 * x, -1.0 + 0.05 * y], axis=2)


def bicubic_model(task: str, factor: int):
    """A residual network whose residual head is zero: it returns the bicubic upsampling
    of its (normalised) input, so CLI outputs can be checked against known values."""
    import torch

    from pacup.models import PacJointUpsample

    torch.manual_seed(0)
    model = PacJointUpsample(factor, variant="lite", residual=True, channels=4, guide_channels=2)
    last = model.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return model


def bicubic_reference(low: np.ndarray, factor: int) -> np.ndarray:
    """What the bicubic-equivalent model returns for a fully valid input (HxW or HxWxC)."""
    import torch
    import torch.nn.functional as F

    x = np.asarray(low, np.float32)
    x = x[..., None] if x.ndim == 2 else x
    t = torch.from_numpy(x).permute(2, 0, 1)[:, None]
    y = F.interpolate(t, scale_factor=factor, mode="bicubic", align_corners=False)
    out = y[:, 0].permute(1, 2, 0).numpy()
    return out[..., 0] if np.asarray(low).ndim == 2 else out


def one_line_error(stderr: str, *fragments: str) -> str:
    """The single ``error:`` line of ``stderr``; checks it contains every fragment."""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    """pacup's atomic writers use hidden ``.name.tmp-*`` files next to the target."""
    return not [n for n in os.listdir(folder) if ".tmp-" in n]
