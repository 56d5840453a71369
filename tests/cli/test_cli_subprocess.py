"""`python -m pacup` as a real process: exit status, streams, no tracebacks, the samples."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import H, W

from pacup.io import read_depth, read_flow, read_guide

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
# Measured ratio to bicubic RMSE on this sample (weights/README.md), with a margin.
SAMPLE_X16_BAR = 0.88


def pacup(*args, cwd):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "pacup", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_depth_and_flow_in_a_real_process(depth_pair, flow_pair, tmp_path):
    low, guide = depth_pair
    proc = pacup("depth", low, "--guide", guide, "--vis", "d.png", cwd=tmp_path)  # the released depth-x4
    assert proc.returncode == 0, proc.stderr
    assert read_depth(tmp_path / "scene_depth_up.png")[0].shape == (H, W)
    assert read_guide(tmp_path / "d.png").shape == (H, W, 3)
    assert "UNTRAINED" not in proc.stderr and "wrote" in proc.stdout
    assert "\x1b[" not in proc.stdout + proc.stderr  # pipes get no colour codes

    low, guide = flow_pair
    proc = pacup("flow", low, "--guide", guide, "--max-flow", "10", "--vis-strip", "s.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "UNTRAINED" not in proc.stderr
    assert read_flow(tmp_path / "scene_flow_up.flo")[0].shape == (H, W, 2)
    assert read_guide(tmp_path / "s.png").shape == (H, 3 * W + 8, 3)


def test_errors_in_a_real_process(depth_pair, tmp_path):
    low, guide = depth_pair
    proc = pacup("depth", tmp_path / "missing.png", "--guide", guide, "--random-weights", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
    assert "missing.png" in proc.stderr and "Traceback" not in proc.stderr

    low.write_bytes(b"garbage")
    proc = pacup("depth", low, "--guide", guide, "--random-weights", "--debug", cwd=tmp_path)
    assert proc.returncode == 2
    assert "scene_depth.png" in proc.stderr and "Traceback" in proc.stderr


@pytest.mark.slow  # 736x496 at x16: 5-15 s on a shared 2-core CPU
def test_shipped_sample_x16(tmp_path):
    """The README's first command: the released depth-x16 model on the real sample beats
    bicubic upsampling of the same input against the ground truth."""
    low_path = SAMPLES / "depth" / "motorcycle_depth_x16.png"
    proc = pacup("depth", low_path, "--guide", SAMPLES / "depth" / "motorcycle_rgb.png", "-o", "up.png",
                 "--vis-strip", "strip.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "UNTRAINED" not in proc.stderr
    depth, _ = read_depth(tmp_path / "up.png")
    gt, gt_valid = read_depth(SAMPLES / "depth" / "motorcycle_depth_gt.png")
    assert depth.shape == gt.shape == (496, 736)
    from pacup.train.baselines import bicubic_upsample

    low, low_valid = read_depth(low_path)
    bicubic = bicubic_upsample(low, 16, low_valid)
    sel = gt_valid & (depth > 0)
    sel[:6], sel[-6:], sel[:, :6], sel[:, -6:] = False, False, False, False

    def rmse(x):
        return float(np.sqrt(np.mean((x[sel] - gt[sel]) ** 2)))

    assert rmse(depth) < SAMPLE_X16_BAR * rmse(bicubic), (rmse(depth), rmse(bicubic))
    strip = read_guide(tmp_path / "strip.png")
    assert strip.shape == (496, 3 * 736 + 8, 3)
    np.testing.assert_array_equal(strip[:, :736], read_guide(SAMPLES / "depth" / "motorcycle_rgb.png"))
