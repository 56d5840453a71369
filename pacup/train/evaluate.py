"""Measure guided upsampling methods on ground truth: depth RMSE/MAE and flow EPE.

For every sample (:class:`pacup.train.folders.Sample`) and method:

1. the ground truth and guide are cropped (top-left kept) to a multiple of the factor
   (:func:`pacup.train.degrade.crop_to_multiple`);
2. the low-resolution input is made from the ground truth by the protocol's degradation
   (:data:`PROTOCOLS`: ``'A'`` point sampling, ``'B'`` Pillow bicubic, ``'flow'``
   antialiased bilinear; a degradation name is accepted too), invalid ground truth never
   entering a valid low-res pixel;
3. the method upsamples it guided by the RGB frame (flow vectors come back in full-res px);
4. the metrics compare with the ground truth on valid pixels only.

Depth metrics (:func:`depth_metrics`), per image, then averaged over images (mean of
per-image RMSEs, as the protocol-B papers report):

- ``rmse``, ``mae``: on valid ground-truth pixels inside a 6-px border crop (ANCHORS),
  in the dataset's units (``units`` of the sample: ``m``, ``mm``, ``disparity_px``...);
- ``rmse_cm``, ``mae_cm``: the same in centimetres when the data is metric (NYU style);
- ``rmse_255``, ``mae_255`` for disparity ground truth (the Middlebury motorcycle): the
  Middlebury protocol-B tables use 8-bit disparity images, so our float disparity is
  mapped to 0-255 by the IMAGE'S OWN maximum valid disparity: ``d255 = d * 255 /
  max(d_gt valid)`` (59.91 px for the motorcycle, so 1 px = 4.256 units). Both prediction
  and ground truth are scaled by that one constant, so ``rmse_255 = rmse * 255 / max``;
- ``edge_rmse``, ``edge_mae`` (and their cm / 0-255 forms): the same restricted to
  pixels near depth discontinuities (:func:`depth_edge_mask`): a pair of 4-neighbours,
  both valid, whose depths differ by more than 5 % of the smaller one is a discontinuity;
  both pixels of such a pair, and every valid pixel within 3 px of one (Chebyshev
  distance, i.e. a 7x7 square), are edge pixels. For disparity data the depth is computed
  from the disparity first (``Sample.edge_depth``).

Flow metrics (:func:`flow_metrics`): ``epe`` = mean end-point error ``||pred - gt||`` in
full-res px over valid pixels (no border crop by default: ANCHORS' flow protocol states
none), ``epe_noc`` over valid non-occluded pixels where the sample knows occlusions
(synthetic), and ``epe_occ`` over occluded ones.

Methods (:func:`resolve_method`): ``'nearest'``, ``'bicubic'``, ``'jbu'``, ``'guided'``
(:mod:`pacup.train.baselines`, with the sample lattice of the protocol: corner for point
sampling, centre otherwise), or a network: an ``nn.Module``, a registry name, or a
``.safetensors`` path (including our ablation architectures), run through
:mod:`pacup.pipeline` (its per-image min-max normalisation, hole filling and tiling).
Pixels the pipeline leaves NaN (no valid input within its fill radius) are reported in
``coverage`` and left out of the metrics.

Command line (while ``pacup eval`` is being wired)::

    python -m pacup.train.evaluate --data /path/motorcycle --protocol B --factor 8 \\
        --method bicubic --method jbu --method guided --method runs/x/model.safetensors \\
        --json runs/eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import baselines as B
from .degrade import crop_to_multiple, degrade
from .folders import Sample, load_dataset

__all__ = [
    "PROTOCOLS", "EDGE_RELATIVE_JUMP", "EDGE_RADIUS", "DEPTH_BORDER", "compare", "depth_edge_mask",
    "default_protocol", "depth_metrics", "evaluate", "flow_metrics", "protocol_method", "resolve_method", "results_table",
]

PROTOCOLS = {"A": "point", "B": "bicubic", "flow": "bilinear_aa"}
EDGE_RELATIVE_JUMP = 0.05
EDGE_RADIUS = 3
DEPTH_BORDER = 6
FLOW_BORDER = 0

Method = Callable[[np.ndarray, np.ndarray, np.ndarray, int, str, bool], np.ndarray]


def default_protocol(task: str) -> str:
    """The protocol a dev set of ``task`` is scored with unless one is given: ``'B'`` for
    depth (Pillow bicubic), ``'flow'`` for flow (antialiased bilinear)."""
    return "flow" if task == "flow" else "B"


def protocol_method(protocol: str) -> str:
    """Degradation method of a protocol name (``'A'``, ``'B'``, ``'flow'``) or the
    degradation name itself."""
    from .degrade import METHODS

    if protocol in PROTOCOLS:
        return PROTOCOLS[protocol]
    if protocol in METHODS:
        return protocol
    raise ValueError(f"unknown protocol {protocol!r}: expected one of {sorted(PROTOCOLS)} or a degradation "
                     f"method {METHODS}")


def _align(method: str) -> str:
    return "corner" if method == "point" else "centre"


# --------------------------------------------------------------------------- metrics


def depth_edge_mask(depth: np.ndarray, valid: np.ndarray, rel: float = EDGE_RELATIVE_JUMP,
                    radius: int = EDGE_RADIUS) -> np.ndarray:
    """Valid pixels within ``radius`` px (Chebyshev) of a depth discontinuity: a pair of
    valid 4-neighbours a, b with ``|a - b| > rel * min(a, b)`` (module docstring)."""
    d = np.asarray(depth, np.float64)
    v = np.asarray(valid, bool) & np.isfinite(d)
    jump = np.zeros(d.shape, bool)
    with np.errstate(invalid="ignore"):
        for a, b, va, vb in ((d[:, 1:], d[:, :-1], v[:, 1:], v[:, :-1]), (d[1:], d[:-1], v[1:], v[:-1])):
            j = va & vb & (np.abs(a - b) > rel * np.minimum(a, b))
            if a.shape[1] != d.shape[1]:
                jump[:, 1:] |= j
                jump[:, :-1] |= j
            else:
                jump[1:] |= j
                jump[:-1] |= j
    if radius > 0 and jump.any():
        t = torch.from_numpy(jump.astype(np.float32))[None, None]
        jump = F.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy() > 0
    return jump & v


def _border_mask(shape, border: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    b = int(border)
    if 2 * b >= min(shape):
        return m
    m[b : shape[0] - b if b else None, b : shape[1] - b if b else None] = True
    return m


def _err_stats(err: np.ndarray, sel: np.ndarray, prefix: str, out: dict, scale: float = 1.0, suffix: str = ""):
    e = err[sel]
    if e.size == 0:
        out[f"{prefix}rmse{suffix}"] = out[f"{prefix}mae{suffix}"] = float("nan")
        return
    out[f"{prefix}rmse{suffix}"] = float(np.sqrt(np.mean(e.astype(np.float64) ** 2)) * scale)
    out[f"{prefix}mae{suffix}"] = float(np.mean(np.abs(e).astype(np.float64)) * scale)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, units: str = "m",
                  border: int = DEPTH_BORDER, edge_depth: np.ndarray | None = None,
                  disparity_max: float | None = None) -> dict:
    """Per-image depth metrics (module docstring for every definition).

    Args:
        pred, gt: (H, W) in the same units. valid: (H, W) bool ground-truth validity.
        units: the data's units; ``'m'``/``'mm'`` add ``*_cm`` keys.
        border: pixels cropped on each side.
        edge_depth: depth used to find discontinuities (default ``gt``).
        disparity_max: for disparity data, the image's maximum valid disparity (adds the
            ``*_255`` keys).

    Returns:
        dict with rmse, mae, edge_rmse, edge_mae, n_pixels, n_edge_pixels, coverage and
        the unit variants.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    sel = np.asarray(valid, bool) & _border_mask(gt.shape, border) & np.isfinite(gt)
    finite = np.isfinite(pred)
    out = {"n_pixels": int(sel.sum()), "coverage": float((sel & finite).sum() / max(1, sel.sum()))}
    sel = sel & finite
    err = np.where(sel, pred - gt, 0.0)
    edges = depth_edge_mask(gt if edge_depth is None else edge_depth, valid) & sel
    out["n_edge_pixels"] = int(edges.sum())
    scales = [("", 1.0)]
    if units == "m":
        scales.append(("_cm", 100.0))
    elif units == "mm":
        scales.append(("_cm", 0.1))
    if disparity_max is not None and disparity_max > 0:
        scales.append(("_255", 255.0 / float(disparity_max)))
    for suffix, sc in scales:
        _err_stats(err, sel, "", out, sc, suffix)
        _err_stats(err, edges, "edge_", out, sc, suffix)
    return out


def flow_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, noc: np.ndarray | None = None,
                 border: int = FLOW_BORDER) -> dict:
    """End-point errors in full-res px: ``epe`` (valid pixels), ``epe_noc`` / ``epe_occ``
    (valid and not occluded / occluded, when ``noc`` is given)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape or gt.ndim != 3 or gt.shape[2] != 2:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} must both be (H, W, 2)")
    sel = np.asarray(valid, bool) & _border_mask(gt.shape[:2], border) & np.isfinite(gt).all(axis=2)
    finite = np.isfinite(pred).all(axis=2)
    out = {"n_pixels": int(sel.sum()), "coverage": float((sel & finite).sum() / max(1, sel.sum()))}
    sel = sel & finite
    epe = np.sqrt(((np.where(sel[..., None], pred - gt, 0.0)) ** 2).sum(axis=2))
    out["epe"] = float(epe[sel].mean()) if sel.any() else float("nan")
    if noc is not None:
        noc = np.asarray(noc, bool)
        for key, m in (("epe_noc", sel & noc), ("epe_occ", sel & ~noc)):
            out[key] = float(epe[m].mean()) if m.any() else float("nan")
    return out


# --------------------------------------------------------------------------- methods


def _baseline(name: str) -> Method:
    fn = B.BASELINES[name]

    def run(low, low_valid, guide, factor, align, flow):
        out = fn(low, guide, factor, low_valid, align=align)
        return out * np.float32(factor) if flow else out

    return run


def load_network(spec, task: str | None = None, factor: int | None = None) -> tuple[nn.Module, str]:
    """A network from an ``nn.Module``, a registry name or a ``.safetensors`` path (pacup
    models and the ablation architectures of :mod:`pacup.train.ablations`)."""
    if isinstance(spec, nn.Module):
        return spec, type(spec).__name__
    from .ablations import load_any_model

    model = load_any_model(spec, task=task, factor=factor)
    path = Path(str(spec))
    name = path.name.removesuffix(".safetensors")
    if name in ("model", "last") and path.parent.name:
        name = f"{path.parent.name}/{name}"  # runs/<run>/model.safetensors -> "<run>/model"
    return model, name


def _network(model: nn.Module, device, ensemble: bool = False) -> Method:
    from .. import pipeline

    def run(low, low_valid, guide, factor, align, flow):
        fn = pipeline.upsample_flow if flow else pipeline.upsample_depth
        return fn(low, guide, factor, model=model, valid=low_valid, device=device, ensemble=ensemble)

    return run


def resolve_method(method, task: str = "depth", factor: int | None = None, device="cpu",
                   ensemble: bool = False) -> tuple[str, Method]:
    """(display name, callable ``(low, low_valid, guide, factor, align, flow) -> prediction``).
    ``ensemble``: networks run with the pipeline's flip ensemble (name gets ``+ensemble``)."""
    if isinstance(method, str) and method in B.BASELINES:
        return method, _baseline(method)
    if callable(method) and not isinstance(method, nn.Module):
        return getattr(method, "__name__", "method"), method
    model, name = load_network(method, task, factor)
    return (f"{name}+ensemble" if ensemble else name), _network(model, device, ensemble)


# --------------------------------------------------------------------------- evaluation


def _mean(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if key in r and r[key] == r[key]]
    return float(np.mean(vals)) if vals else float("nan")


def evaluate(method, dataset: Iterable[Sample], protocol: str = "B", factor: int = 8, border: int | None = None,
             device="cpu", name: str | None = None, progress: Callable[[str], None] | None = None,
             ensemble: bool = False) -> dict:
    """Evaluate one method on a dataset.

    Args:
        method: ``'bicubic'``, ``'jbu'``, ``'guided'``, ``'nearest'``, an ``nn.Module``, a
            registry name, a ``.safetensors`` path, or a callable ``(low, low_valid, guide,
            factor, align, flow) -> prediction`` (:data:`Method`).
        dataset: samples (:mod:`pacup.train.folders`); all of one kind.
        protocol: ``'A'``, ``'B'``, ``'flow'`` or a degradation method name.
        factor: upsampling factor.
        border: border crop in px (default 6 for depth, 0 for flow).
        device: for networks.
        name: display name (default from the method).
        progress: called with each sample's name before it runs.
        ensemble: run networks with the pipeline's flip ensemble.

    Returns:
        ``{"method", "protocol", "degradation", "factor", "task", "n_images", "seconds",
        "metrics": {key: mean over images}, "per_image": [...]}``.
    """
    samples = list(dataset)
    if not samples:
        raise ValueError("empty dataset")
    task = samples[0].kind
    if any(s.kind != task for s in samples):
        raise ValueError("a dataset must hold samples of one kind (depth or flow)")
    mname, fn = resolve_method(method, task, factor, device, ensemble)
    return _evaluate_fn(fn, samples, protocol, factor, name or mname, border, progress)


def _evaluate_fn(fn: Method, samples: list, protocol: str, factor: int, name: str, border: int | None = None,
                 progress=None) -> dict:
    task = samples[0].kind
    deg = protocol_method(protocol)
    align = _align(deg)
    border = (DEPTH_BORDER if task == "depth" else FLOW_BORDER) if border is None else int(border)
    rows = []
    t_all = 0.0
    for s in samples:
        if progress:
            progress(s.name)
        gt = crop_to_multiple(s.gt, factor)
        valid = crop_to_multiple(s.valid, factor)
        guide = np.array(crop_to_multiple(s.guide, factor))  # a writable copy (torch.from_numpy warns otherwise)
        low, lv = degrade(gt, factor, deg, valid=valid, flow=task == "flow")
        t0 = time.perf_counter()
        pred = fn(low, lv, guide, factor, align, task == "flow")
        dt = time.perf_counter() - t0
        t_all += dt
        if task == "depth":
            dmax = float(s.gt[s.valid].max()) if s.is_disparity and s.valid.any() else None
            edge = None if s.edge_depth is None else crop_to_multiple(s.edge_depth, factor)
            m = depth_metrics(pred, gt, valid, s.units, border, edge, dmax)
        else:
            noc = None if s.noc is None else crop_to_multiple(s.noc, factor)
            m = flow_metrics(pred, gt, valid, noc, border)
        m.update(name=s.name, seconds=dt, units=s.units)
        rows.append(m)
    keys = [k for k in rows[0] if k not in ("name", "units", "n_pixels", "n_edge_pixels")]
    metrics = {k: _mean(rows, k) for k in keys if isinstance(rows[0][k], float)}
    return {
        "method": name, "task": task, "protocol": protocol, "degradation": deg, "factor": int(factor),
        "border": border, "n_images": len(rows), "units": rows[0]["units"], "seconds": t_all,
        "metrics": metrics, "per_image": rows,
    }


def primary_metric(result: dict) -> str:
    """The headline metric of a result: ``epe`` for flow, else ``rmse_255`` (disparity),
    ``rmse_cm`` (metric) or ``rmse``."""
    m = result["metrics"]
    if result["task"] == "flow":
        return "epe"
    for k in ("rmse_255", "rmse_cm", "rmse"):
        if k in m:
            return k
    return "rmse"


def results_table(results: list[dict], title: str | None = None):
    """A rich table of several methods on one dataset/protocol/factor; the last column is
    the change of the headline metric relative to ``bicubic`` when it is among them."""
    from rich.table import Table

    if not results:
        raise ValueError("no results")
    r0 = results[0]
    pk = primary_metric(r0)
    if r0["task"] == "flow":
        cols = [k for k in ("epe", "epe_noc", "epe_occ") if k in r0["metrics"]]
    else:
        suffix = pk[len("rmse"):]
        cols = [f"rmse{suffix}", f"mae{suffix}", f"edge_rmse{suffix}", f"edge_mae{suffix}"]
        if suffix:
            cols += ["rmse", "edge_rmse"]
    base = next((r for r in results if r["method"] == "bicubic"), None)
    t = Table(title=title or f"{r0['task']} x{r0['factor']}, protocol {r0['protocol']} ({r0['degradation']}), "
                             f"{r0['n_images']} image(s), units {r0['units']}")
    t.add_column("method")
    for c in cols:
        t.add_column(c, justify="right")
    t.add_column(f"{pk} vs bicubic", justify="right")
    t.add_column("coverage", justify="right")
    t.add_column("s/image", justify="right")
    for r in results:
        m = r["metrics"]
        rel = ""
        if base is not None and base["metrics"].get(pk, 0) > 0:
            rel = f"{100.0 * (m[pk] / base['metrics'][pk] - 1.0):+.1f}%"
        t.add_row(r["method"], *[f"{m.get(c, float('nan')):.4f}" for c in cols], rel,
                  f"{m.get('coverage', float('nan')):.4f}", f"{r['seconds'] / max(1, r['n_images']):.2f}")
    return t


def compare(methods: list, dataset: Iterable[Sample], protocol: str = "B", factor: int = 8,
            border: int | None = None, device="cpu", json_path=None, console=None,
            names: list[str] | None = None, ensemble: bool = False) -> list[dict]:
    """Evaluate several methods on the same samples; print a table (``console``: a rich
    Console, None = stdout) and write all results as JSON when ``json_path`` is given."""
    from rich.console import Console

    console = console or Console()
    samples = list(dataset)
    results = []
    for i, m in enumerate(methods):
        nm = names[i] if names and i < len(names) else None
        results.append(evaluate(m, samples, protocol, factor, border, device, nm, ensemble=ensemble))
    console.print(results_table(results))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"results": results}, indent=1))
    return results


def sweep_baselines(task: str = "depth", factor: int = 8, protocol: str = "B", n: int = 8, size: int = 192,
                    console=None, json_path=None) -> list[dict]:
    """The parameter sweep behind the JBU / guided-filter defaults of
    :mod:`pacup.train.baselines`, on the synthetic split only (never on the dev sets).
    Returns one row per setting with the mean headline metric."""
    from rich.console import Console
    from rich.table import Table

    samples = load_dataset(f"synthetic-{task}", n=n, size=size)
    grid = [("bicubic", {})]
    for sr in (0.03, 0.05, 0.08, 0.12, 0.2):
        for ss in (0.5, 1.0):
            for init in ("bicubic", "nearest"):
                grid.append(("jbu", dict(sigma_range=sr, sigma_spatial=ss * factor, init=init,
                                         dilation=max(1, factor // 4))))
    for rm in (0.5, 1.0, 2.0):
        for eps in (1e-4, 1e-3, 1e-2):
            for color in (False, True):
                grid.append(("guided", dict(radius=max(1, int(rm * factor)), eps=eps, color=color)))
    rows = []
    for kind, kw in grid:
        fn = {"bicubic": B.bicubic_upsample, "jbu": B.jbu_upsample, "guided": B.guided_upsample}[kind]

        def method(low, lv, guide, f, align, flow, fn=fn, kw=kw, kind=kind):
            out = fn(low, f, lv, align=align) if kind == "bicubic" else fn(low, guide, f, lv, align=align, **kw)
            return out * np.float32(f) if flow else out

        r = _evaluate_fn(method, samples, protocol, factor, f"{kind} {kw}")
        rows.append({"method": kind, "params": kw, "metric": primary_metric(r), **r["metrics"]})
    console = console or Console(width=160)
    t = Table(title=f"baseline sweep: synthetic {task} x{factor}, protocol {protocol}, {n} frames of {size}px")
    for c in ("method", "params", rows[0]["metric"], "edge_" + rows[0]["metric"]):
        t.add_column(c)
    for r in rows:
        t.add_row(r["method"], json.dumps(r["params"]), f"{r[r['metric']]:.4f}",
                  f"{r.get('edge_' + r['metric'], float('nan')):.4f}")
    console.print(t)
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pacup.train.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="folder, or synthetic[-depth|-flow] (required unless sweeping)")
    p.add_argument("--task", choices=["depth", "flow"], default=None)
    p.add_argument("--protocol", default=None, help="A, B, flow or a degradation method (default B / flow)")
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--method", action="append", default=None,
                   help="bicubic, jbu, guided, nearest, a registry name or a .safetensors path (repeatable)")
    p.add_argument("--border", type=int, default=None)
    p.add_argument("--depth-scale", type=float, default=None)
    p.add_argument("--n", type=int, default=16, help="synthetic split: number of frames")
    p.add_argument("--size", type=int, default=256, help="synthetic split: frame size")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--sweep-baselines", action="store_true", help="the JBU/guided parameter sweep (synthetic)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.sweep_baselines:
        sweep_baselines(a.task or "depth", a.factor, a.protocol or "B", a.n, a.size, json_path=a.json)
        return 0
    if a.data is None:
        p.error("--data is required")
    ds = load_dataset(a.data, a.task, a.depth_scale, n=a.n, size=a.size)
    protocol = a.protocol or default_protocol(ds[0].kind)
    from rich.console import Console

    compare(a.method or ["bicubic", "jbu", "guided"], ds, protocol, a.factor, a.border, a.device, a.json,
            console=Console(width=200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
