"""Regenerate every file in ``samples/`` (see samples/README.md for what each one is).

Usage::

    python samples/make_samples.py [DATA_DIR] [--out samples]

``DATA_DIR`` is a folder holding ``depth/motorcycle/motorcycle_left.png`` and
``depth/motorcycle/motorcycle_disp.npz`` (the development data, e.g. /work/shared/data),
or a folder holding those two files directly. Without it the copies that ship inside the
scikit-image wheel (``skimage/data/``, byte-identical) are used.

Depth (Middlebury 2014 "Motorcycle", 1/4 scale, Scharstein et al. GCPR 2014):
    centre crop 741x500 -> 736x496 (divisible by 16); depth in mm =
    193.001 * 994.978 / (d + 31.086) from disparity d; unknown disparity (inf) -> 0;
    low-res inputs by protocol B (antialiased bicubic of the stored mm ground truth,
    masked so unknown pixels never leak in) at x4, x8, x16.
Flow (synthetic, FlyingChairs-style, generated here; no third-party data):
    ``make_flow_scene(seed=7, 256, 320)``; low-res inputs by antialiased bilinear at x4, x8
    with vectors divided by the factor (low-res pixel units).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from pacup.io import read_guide, write_depth, write_flow, write_image
from pacup.train.degrade import degrade
from pacup.train.synth import make_flow_scene

# Middlebury 2014 Motorcycle calibration at 1/4 scale (f and doffs divided by 4).
BASELINE_MM = 193.001
FOCAL_PX = 994.978
DOFFS_PX = 31.086

DEPTH_SIZE = (496, 736)  # (H, W): multiples of 16
DEPTH_FACTORS = (4, 8, 16)
FLOW_SEED = 7
FLOW_SIZE = (256, 320)  # (H, W)
FLOW_FACTORS = (4, 8)


def find_motorcycle(data_dir: str | None) -> tuple[str, str]:
    """Paths of (left RGB, disparity npz)."""
    if data_dir is None:
        import skimage.data

        folder = os.path.dirname(skimage.data.__file__)
    else:
        nested = os.path.join(data_dir, "depth", "motorcycle")
        folder = nested if os.path.isdir(nested) else data_dir
    rgb = os.path.join(folder, "motorcycle_left.png")
    disp = os.path.join(folder, "motorcycle_disp.npz")
    for path in (rgb, disp):
        if not os.path.isfile(path):
            sys.exit(f"error: {path}: file not found (pass the data folder as the first argument)")
    return rgb, disp


def centre_crop(a: np.ndarray, height: int, width: int) -> np.ndarray:
    y0 = (a.shape[0] - height) // 2
    x0 = (a.shape[1] - width) // 2
    return a[y0 : y0 + height, x0 : x0 + width]


def make_depth(data_dir: str | None, out: str) -> None:
    rgb_path, disp_path = find_motorcycle(data_dir)
    rgb = read_guide(rgb_path)
    disp = np.load(disp_path)["arr_0"].astype(np.float64)
    if rgb.shape[:2] != disp.shape:
        sys.exit(f"error: {rgb_path} is {rgb.shape[:2]} but {disp_path} is {disp.shape}")
    height, width = DEPTH_SIZE
    rgb = centre_crop(rgb, height, width)
    disp = centre_crop(disp, height, width)

    valid = np.isfinite(disp)
    with np.errstate(invalid="ignore", divide="ignore"):
        depth_mm = np.where(valid, BASELINE_MM * FOCAL_PX / (disp + DOFFS_PX), 0.0)
    # Round to what the 16-bit PNG stores, so the low-res inputs are reproducible from the
    # shipped ground truth alone.
    gt = np.rint(depth_mm).astype(np.float32)

    write_image(os.path.join(out, "motorcycle_rgb.png"), rgb)
    write_depth(os.path.join(out, "motorcycle_depth_gt.png"), gt, valid=valid)
    for factor in DEPTH_FACTORS:
        low, low_valid = degrade(gt, factor, "bicubic", valid=valid)
        write_depth(os.path.join(out, f"motorcycle_depth_x{factor}.png"), low, valid=low_valid)


def make_flow(out: str) -> None:
    height, width = FLOW_SIZE
    scene = make_flow_scene(FLOW_SEED, height, width)
    # The synthetic flow is defined for every pixel of img0 (occluded ones included), like
    # the output of a flow estimator, so both files are dense.
    flow = scene["flow"].astype(np.float32)
    write_image(os.path.join(out, "synth_img0.png"), scene["img0"])
    write_flow(os.path.join(out, "synth_flow_gt.flo"), flow)
    for factor in FLOW_FACTORS:
        low, low_valid = degrade(flow, factor, "bilinear_aa", flow=True)
        write_flow(os.path.join(out, f"synth_flow_x{factor}.flo"), low, valid=low_valid)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", help="folder with depth/motorcycle/ (default: scikit-image's copy)")
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)), help="output folder")
    args = parser.parse_args(argv)
    depth_dir = os.path.join(args.out, "depth")
    flow_dir = os.path.join(args.out, "flow")
    os.makedirs(depth_dir, exist_ok=True)
    os.makedirs(flow_dir, exist_ok=True)
    make_depth(args.data_dir, depth_dir)
    make_flow(flow_dir)
    for folder in (depth_dir, flow_dir):
        for name in sorted(os.listdir(folder)):
            print(f"{os.path.join(folder, name)}  {os.path.getsize(os.path.join(folder, name)):>9,d} bytes")


if __name__ == "__main__":
    main()
