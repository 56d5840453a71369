"""Training loop for the joint upsampling networks (and the ablations).

What one step does:

1. a batch of crops (guide RGB, low-res signal + validity, full-res target + validity)
   comes from the data sources: ``'synthetic'`` (:mod:`pacup.train.synth`, rendered on the
   fly, optionally cached) and/or folders of RGB + ground truth (:mod:`pacup.train.folders`;
   random crops degraded on the fly with :func:`pacup.train.degrade.degrade`);
2. every sample is normalised exactly as :mod:`pacup.pipeline` does at inference
   (:func:`normalise_batch`): each channel min-max scaled over its valid low-res pixels,
   holes filled with the pipeline's own filler; the target goes through the same affine map
   (flow targets are first divided by the factor: the network works in low-res px);
3. loss in that normalised space over valid target pixels (``'l1'`` or ``'mse'``), Adam,
   learning rate ``lr`` with a cosine decay to 5 % by ``steps`` (or constant);
4. every ``log_every`` steps a JSON line goes to ``out_dir/log.jsonl``; every
   ``ckpt_every`` steps (and at the end) the weights are written as safetensors
   (``last.safetensors``, via :func:`pacup.models.save_model`) with the optimizer state and
   step in ``last_state.pt`` (our own file, ``torch.save``); the final weights also go to
   ``model.safetensors``. ``resume=True`` continues from them; because the batch of step t
   is a pure function of (seed, t) and nothing else is random, a resumed run continues
   exactly as the uninterrupted one would (bit-identical on the same machine and threads).
   The log's ``seconds`` and the summary's ``minutes`` count the training time of all
   sessions of a run (the checkpoint carries the time spent so far). A resumed run may
   also be given more ``steps`` than it first had: the cosine then follows the longer
   schedule from the step it resumes at (the learning rate rises again, a warm restart).

Batches: position n = t*batch + j of the stream is item ``perm_e[n mod N]`` of the
concatenated sources, with ``perm_e`` a permutation seeded by (seed, epoch e = n div N),
where N is the total length (``synthetic_pool`` items for the synthetic source).

CUDA: with ``amp`` (default on CUDA) the forward pass runs under bfloat16 autocast (no loss
scaling needed). Validation (``val_every``): a fixed synthetic set (seeded apart from
training), reporting the normalised-space RMSE relative to bicubic (``val_rel_rmse`` < 1
beats bicubic).

Command line (while ``pacup train`` is being wired)::

    python -m pacup.train.loop --task depth --factor 8 --variant lite --steps 2000 \\
        --out runs/depth-x8-lite --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .degrade import degrade

__all__ = ["TrainConfig", "train", "build_train_model", "normalise_batch", "masked_loss", "FolderCrops",
           "make_sources", "batch_indices"]

LOSSES = ("l1", "mse")

# What a resumed run may be given anew: its length and pool (a longer schedule over more
# scenes, as the model card's 6000-step runs were), the machine and the bookkeeping.
# Every other option shapes the model or its data, and must be what the run started with.
RESUME_MAY_CHANGE = frozenset({"steps", "synthetic_pool", "resume", "out_dir", "device", "threads", "workers",
                               "cache", "amp", "progress", "log_every", "ckpt_every", "val_every", "val_size",
                               "max_minutes"})


@dataclass
class TrainConfig:
    """Every option of :func:`train` (see its docstring)."""

    task: str = "depth"
    factor: int = 8
    variant: str | None = "lite"  # None: the --init-from weights' variant (lite without them)
    data: list = field(default_factory=lambda: ["synthetic"])
    steps: int = 1000
    batch: int = 8
    crop: int = 128
    lr: float = 1e-3
    out_dir: str = "runs/train"
    resume: bool = False
    device: str = "cpu"
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 250
    threads: int | None = None
    ablation: str | None = None
    loss: str = "l1"
    method: str | None = None
    guide_scale: float | None = 4.0
    # Residual over bicubic by default: measured (depth x8 Lite, 400 steps, synthetic val RMSE
    # relative to bicubic) 1.42 for direct prediction vs 0.84 residual; see the run notes.
    residual: bool = True
    noise_std: float = 0.0
    holes: float = 0.0
    occlusion: float = 0.0
    disparity: float = 0.0
    clutter: float = 0.0
    misalign: float = 0.0
    frames: float = 0.0
    two_tone: float = 0.0
    guide_aug: float = 0.0
    guide_blur: float = 0.0
    guide_contrast: float = 1.0
    texture_gain: float = 1.0
    ema: float = 0.0
    init_from: str | None = None
    zero_init_head: bool = False
    negative_slope: float = 0.0
    guide_pyramid: bool | None = None  # None: that of the --init-from weights, else False
    init: str = "default"
    synthetic_pool: int = 1000
    cache: bool = True
    workers: int = 0
    amp: bool | None = None
    lr_schedule: str = "cosine"
    warmup: int = 0
    val_every: int = 0
    val_size: int = 8
    max_minutes: float | None = None
    grad_clip: float | None = None
    depth_scale: float | None = None
    progress: bool = True


# --------------------------------------------------------------------------- data


class FolderCrops(torch.utils.data.Dataset):
    """Random crops of folder samples, degraded on the fly; item i depends only on
    (seed, i). Items have the keys of :class:`pacup.train.synth.SyntheticDepthDataset`
    (flow: target in full-res px, low in low-res px). Crops with less than half of their
    target valid are redrawn (up to 10 times)."""

    def __init__(self, samples, factor: int, crop: int, method: str, length: int = 10000, seed: int = 0,
                 noise_std: float = 0.0, holes: float = 0.0):
        self.samples = list(samples)
        if not self.samples:
            raise ValueError("no samples")
        self.factor = int(factor)
        self.crop = (int(crop) // self.factor) * self.factor
        for s in self.samples:
            if min(s.gt.shape[:2]) < self.crop:
                raise ValueError(f"{s.name}: {s.gt.shape[:2]} is smaller than the crop {self.crop}")
        self.method, self.length, self.seed = method, int(length), int(seed)
        self.noise_std, self.holes = float(noise_std), float(holes)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        from .synth import _to_t

        rng = np.random.default_rng([self.seed, 3, int(i)])
        for _ in range(10):
            s = self.samples[int(rng.integers(len(self.samples)))]
            H, W = s.gt.shape[:2]
            y0, x0 = int(rng.integers(0, H - self.crop + 1)), int(rng.integers(0, W - self.crop + 1))
            sl = (slice(y0, y0 + self.crop), slice(x0, x0 + self.crop))
            tv = s.valid[sl]
            if tv.mean() >= 0.5:
                break
        gt = s.gt[sl]
        flow = s.kind == "flow"
        low, lv = degrade(gt, self.factor, self.method, valid=tv, noise_std=self.noise_std, holes=self.holes,
                          seed=int(rng.integers(2**31)), flow=flow)
        return {"guide": _to_t(s.guide[sl].astype(np.float32) / 255.0), "low": _to_t(low), "low_valid": _to_t(lv),
                "target": _to_t(np.where(tv[..., None] if flow else tv, gt, 0)), "target_valid": _to_t(tv)}


class _Cached(torch.utils.data.Dataset):
    """Keeps every item once made, for pools that a run revisits (rendering a step's 8 depth
    crops on the fly made a Lite x8 step about 12 % slower on CPU: 1.06 against 0.94 s)."""

    def __init__(self, ds):
        self.ds, self.store = ds, {}

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        if i not in self.store:
            self.store[i] = self.ds[i]
        return self.store[i]


def make_sources(cfg: TrainConfig) -> torch.utils.data.Dataset:
    """The concatenated training sources of ``cfg.data``."""
    from .folders import load_dataset
    from .synth import SyntheticDepthDataset, SyntheticFlowDataset

    method = cfg.method or ("bilinear_aa" if cfg.task == "flow" else "bicubic")
    parts = []
    for k, spec in enumerate(cfg.data):
        if spec in ("synthetic", f"synthetic-{cfg.task}"):
            kw = dict(crop=cfg.crop, method=method, length=cfg.synthetic_pool, seed=cfg.seed,
                      noise_std=cfg.noise_std, holes=cfg.holes, guide_aug=cfg.guide_aug,
                      guide_blur=cfg.guide_blur, guide_contrast=cfg.guide_contrast)
            if cfg.task == "flow":
                parts.append(SyntheticFlowDataset(cfg.factor, frames=cfg.frames, two_tone=cfg.two_tone, **kw))
            else:
                parts.append(SyntheticDepthDataset(cfg.factor, occlusion=cfg.occlusion, disparity=cfg.disparity,
                                                   clutter=cfg.clutter, misalign=cfg.misalign,
                                                   texture_gain=cfg.texture_gain, **kw))
        else:
            samples = load_dataset(spec, cfg.task, cfg.depth_scale)
            parts.append(FolderCrops(samples, cfg.factor, cfg.crop, method, length=max(1000, cfg.synthetic_pool),
                                     seed=cfg.seed + 1000 * (k + 1), noise_std=cfg.noise_std, holes=cfg.holes))
    if not parts:
        raise ValueError("no training data given")
    ds = parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
    # A cache only pays when some item comes round again: a pool at least as long as the
    # run (a fresh scene for every crop) is rendered on the fly and never held in memory.
    revisits = cfg.steps * cfg.batch > len(ds)
    return _Cached(ds) if cfg.cache and cfg.workers == 0 and revisits else ds


def batch_indices(step: int, batch: int, n: int, seed: int) -> list[int]:
    """Dataset indices of training step ``step`` (module docstring)."""
    out, perms = [], {}
    for j in range(batch):
        pos = step * batch + j
        e = pos // n
        if e not in perms:
            perms[e] = np.random.default_rng([seed, 7, e]).permutation(n)
        out.append(int(perms[e][pos % n]))
    return out


def _collate(items):
    keys = [k for k in ("guide", "low", "low_valid", "target", "target_valid") if k in items[0]]
    return {k: torch.stack([it[k] for it in items]) for k in keys}


class _StepSampler(torch.utils.data.Sampler):
    def __init__(self, start, stop, batch, n, seed):
        self.start, self.stop, self.batch, self.n, self.seed = start, stop, batch, n, seed

    def __len__(self):
        return max(0, self.stop - self.start)

    def __iter__(self):
        for t in range(self.start, self.stop):
            yield batch_indices(t, self.batch, self.n, self.seed)


# --------------------------------------------------------------------------- normalisation and loss


def normalise_batch(batch: dict, factor: int, flow: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel min-max normalisation over valid low-res pixels, as
    :mod:`pacup.pipeline` (constant channels: scale 1), holes filled by the pipeline's
    filler. Returns (low_n, target_n, target_valid) with the target mapped the same way
    (flow targets divided by ``factor`` first)."""
    from ..pipeline import _fill_holes

    low, lv = batch["low"].float(), batch["low_valid"].float()
    target, tv = batch["target"].float(), batch["target_valid"].float()
    if flow:
        target = target / factor
    m = lv > 0
    big = torch.finfo(low.dtype).max
    lo = torch.where(m, low, torch.full_like(low, big)).amin(dim=(2, 3), keepdim=True)
    hi = torch.where(m, low, torch.full_like(low, -big)).amax(dim=(2, 3), keepdim=True)
    anyv = m.flatten(1).any(dim=1).view(-1, 1, 1, 1)
    lo = torch.where(anyv, lo, torch.zeros_like(lo))
    hi = torch.where(anyv, hi, torch.zeros_like(hi))
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    xn = torch.where(m, (low - lo) / scale, torch.zeros_like(low))
    tn = (target - lo) / scale
    need = ~m.flatten(1).all(dim=1)
    if bool(need.any()):
        rgb_low = F.avg_pool2d(batch["guide"].float(), factor)
        for i in torch.nonzero(need).flatten().tolist():
            if bool(m[i].any()):
                xn[i : i + 1], _ = _fill_holes(xn[i : i + 1], lv[i : i + 1], rgb_low[i : i + 1])
            else:
                tv[i] = 0
    return xn, tn, tv


def masked_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean L1 or squared error over valid pixels (``valid`` (B, 1, H, W), all channels)."""
    d = pred.float() - target
    e = d.abs() if kind == "l1" else d * d
    w = valid.expand_as(e)
    return (e * w).sum() / w.sum().clamp_min(1.0)


# --------------------------------------------------------------------------- model and checkpoints


def build_train_model(cfg: TrainConfig) -> nn.Module:
    """``PacJointUpsample(factor, variant, residual, guide_scale)`` or the ablation."""
    from ..models import PacJointUpsample
    from .ablations import build_ablation

    if cfg.ablation:
        model = build_ablation(cfg.ablation, cfg.factor, cfg.variant, residual=cfg.residual,
                               negative_slope=cfg.negative_slope)
    else:
        model = PacJointUpsample(cfg.factor, cfg.variant, residual=bool(cfg.residual), guide_scale=cfg.guide_scale,
                                 negative_slope=cfg.negative_slope, guide_pyramid=cfg.guide_pyramid)
    if cfg.init == "he":
        _he_init(model)
    elif cfg.init != "default":
        raise ValueError(f"init must be 'default' or 'he', got {cfg.init!r}")
    if cfg.zero_init_head:
        # The last convolution (every architecture here ends in one) starts at zero: a
        # residual network then starts exactly at bicubic, with no random correction that
        # the first steps must learn to switch off. (Tried on flow x16, whose residual
        # collapses to zero within the first steps: it did not prevent that.)
        last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
    return model


def _he_init(model: nn.Module) -> None:
    """He (Kaiming) normal weights, zero biases, for every (transposed, pixel-adaptive)
    convolution, with the fan-in a strided transposed layer really has: in_channels *
    (k / stride)^2 taps reach each output. PyTorch's default gives those layers about a
    fifth of that spread, so a signal shrinks several times per x2 stage (the x16 decoder's
    output was ~1/15 of its He-initialised scale on a synthetic batch). Not used by the
    released models; on flow x16 it did not stop the residual's collapse either."""
    from ..ops import PacConvTranspose2d

    for m in model.modules():
        if isinstance(m, (nn.ConvTranspose2d, PacConvTranspose2d)):
            w = m.weight
            kh, kw = w.shape[-2:]
            sy, sx = (m.stride, m.stride) if isinstance(m.stride, int) else m.stride
            fan_in = w.shape[0] * max(1.0, kh / sy) * max(1.0, kw / sx)
        elif isinstance(m, nn.Conv2d):
            w = m.weight
            fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        else:
            continue
        with torch.no_grad():
            w.normal_(0.0, math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.zero_()


def _lr_at(cfg: TrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup > 0 else 1.0
    if cfg.lr_schedule == "constant":
        return cfg.lr * warm
    if cfg.lr_schedule == "cosine":
        t = min(1.0, step / max(1, cfg.steps))
        return warm * cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))
    raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {cfg.lr_schedule!r}")


def _atomic_torch_save(obj, path: Path):
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _metadata(cfg: TrainConfig, step: int, extra: dict | None = None) -> dict:
    what = f"ablation {cfg.ablation}" if cfg.ablation else f"PacJointUpsample {cfg.variant}"
    start = f"from {cfg.init_from}, " if cfg.init_from else ""
    meta = {"task": cfg.task, "training": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
            "step": step, "description": f"{what} x{cfg.factor} {cfg.task}, trained {start}{step} steps on "
                                         f"{', '.join(map(str, cfg.data))} (pacup.train.loop)"}
    meta.update(extra or {})
    return meta


def _save(model, opt, cfg: TrainConfig, step: int, out: Path, extra=None, final=False, seconds=0.0, ema_model=None):
    """Checkpoint the weights (and their moving average), then the optimizer state and step;
    ``final``: also the model file, which is the average when ``ema_model`` is given (the raw
    weights then go to ``raw.safetensors``)."""
    from ..models import save_model

    meta = _metadata(cfg, step, extra)
    save_model(model, out / "last.safetensors", meta)
    if ema_model is not None:
        save_model(ema_model, out / "last_ema.safetensors", {**meta, "ema": cfg.ema})
    _atomic_torch_save({"step": step, "optimizer": opt.state_dict(), "config": asdict(cfg), "seconds": seconds},
                       out / "last_state.pt")
    if final:
        if ema_model is None:
            save_model(model, out / "model.safetensors", meta)
        else:
            save_model(ema_model, out / "model.safetensors", {**meta, "ema": cfg.ema})
            save_model(model, out / "raw.safetensors", meta)


def _inherited(cfg: TrainConfig, key: str, default):
    """An architecture option left unset (None): a resumed run's own (its ``--init-from``
    source may be gone by then; a run saved before the option has ``default``), else that
    of the ``--init-from`` weights (``default`` where their config lacks it, as the
    ablations' files lack the variant and every file made before guide_pyramid lacks that),
    else ``default``."""
    saved = Path(cfg.out_dir) / "config.json" if cfg.out_dir else None
    if cfg.resume and saved is not None and saved.is_file():
        try:
            value = json.loads(saved.read_text()).get(key)
        except (OSError, ValueError):
            value = None  # _check_resume_config reports the unreadable file
        return default if value is None else value
    if cfg.init_from:
        return getattr(_init_source(cfg), "config", {}).get(key, default)
    return default


def _init_source(cfg: TrainConfig) -> nn.Module:
    """The ``--init-from`` network (a registry name or a ``.safetensors`` file)."""
    from .ablations import load_any_model

    try:
        src = load_any_model(cfg.init_from, task=cfg.task)
    except Exception as exc:  # the loaders' own errors name the file and the problem
        raise ValueError(f"--init-from {cfg.init_from}: {exc}") from exc
    f = getattr(src, "factor", cfg.factor)
    if f > cfg.factor:
        raise ValueError(f"--init-from {cfg.init_from}: it upsamples x{f}, more than this run's x{cfg.factor} "
                         "(a network can be grown to a larger factor, not shrunk)")
    return src


def _init_from(model: nn.Module, cfg: TrainConfig) -> None:
    """Start ``model`` from the weights of ``cfg.init_from``: the same architecture and task,
    and the same factor or a smaller one, which is grown (:mod:`pacup.train.grow`)."""
    from .grow import can_grow, grow_into

    src = _init_source(cfg)
    mine, theirs = getattr(model, "config", {}), getattr(src, "config", {})
    if can_grow(src, model):
        grow_into(src, model)
        return
    if type(src) is not type(model) or mine != theirs:
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise ValueError(f"--init-from {cfg.init_from}: it is a {type(src).__name__} {theirs}, but this run trains a "
                         f"{type(model).__name__} {mine} (the same --ablation and --variant needed, the same or a "
                         f"smaller factor, and the same options; these differ: {differ})")
    model.load_state_dict(src.state_dict(), strict=True)


def _make_ema(model: nn.Module, cfg: TrainConfig, resume_from: Path | None) -> nn.Module | None:
    """The moving average's copy of ``model`` (None when ``cfg.ema`` is 0), restored from
    ``resume_from/last_ema.safetensors`` when resuming a run that has one."""
    import copy

    if not cfg.ema:
        return None
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad_(False)
    if resume_from is not None:
        path = resume_from / "last_ema.safetensors"
        if not path.is_file():
            raise ValueError(f"{path}: missing; the run has --ema {cfg.ema} and its average cannot be resumed")
        _load_weights(ema, path)
    ema.eval()
    return ema


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for every floating parameter and buffer."""
    src = model.state_dict()
    for k, v in ema.state_dict().items():
        if v.is_floating_point():
            v.lerp_(src[k].detach(), 1.0 - decay)
        else:
            v.copy_(src[k])


def _load_weights(model: nn.Module, path: Path):
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)), strict=True)


# --------------------------------------------------------------------------- validation


def _val_set(cfg: TrainConfig):
    from .folders import EVAL_SEED
    from .synth import SyntheticDepthDataset, SyntheticFlowDataset

    cls = SyntheticFlowDataset if cfg.task == "flow" else SyntheticDepthDataset
    method = cfg.method or ("bilinear_aa" if cfg.task == "flow" else "bicubic")
    ds = cls(cfg.factor, crop=cfg.crop, method=method, length=cfg.val_size, seed=EVAL_SEED + 1)
    return _collate([ds[i] for i in range(len(ds))])


@torch.no_grad()
def _validate(model, val, cfg: TrainConfig, device) -> dict:
    was = model.training
    model.eval()
    xn, tn, tv = normalise_batch(val, cfg.factor, cfg.task == "flow")
    rel, losses = [], []
    for i in range(xn.shape[0]):
        x, t, v = xn[i : i + 1].to(device), tn[i : i + 1].to(device), tv[i : i + 1].to(device)
        y = model(x, val["guide"][i : i + 1].to(device)).float()
        bic = F.interpolate(x, scale_factor=cfg.factor, mode="bicubic", align_corners=False)
        e_m = masked_loss(y, t, v, "mse").sqrt()
        e_b = masked_loss(bic, t, v, "mse").sqrt()
        rel.append(float(e_m / e_b.clamp_min(1e-12)))
        losses.append(float(masked_loss(y, t, v, cfg.loss)))
    model.train(was)
    return {"val_rel_rmse": float(np.mean(rel)), "val_loss": float(np.mean(losses))}


# --------------------------------------------------------------------------- the loop


def train(cfg: TrainConfig | None = None, **kw) -> dict:
    """Train a network; see the module docstring for every rule.

    Args (``TrainConfig`` fields, or keyword arguments):
        task: ``'depth'`` or ``'flow'``. factor: 2, 4, 8 or 16. variant: ``'lite'``/``'full'``
            (None: that of the ``init_from`` weights, else lite).
        data: list of sources: ``'synthetic'`` and/or folders (:func:`~pacup.train.folders.load_dataset`).
        steps, batch, crop (full-res px), lr: the schedule. lr_schedule: ``'cosine'``/``'constant'``.
        warmup: steps of linear learning-rate warmup before the schedule.
        out_dir: where log, checkpoints and the final model go. resume: continue from them.
        device: ``'cpu'``/``'cuda'``. amp: bfloat16 autocast (default: on for CUDA).
        seed: model init, synthetic scenes and data order. threads: ``torch.set_num_threads``.
        log_every, ckpt_every, val_every, val_size: logging, checkpoints, validation.
        ablation: None, ``'k1'`` or ``'concat'`` (:mod:`pacup.train.ablations`).
        loss: ``'l1'`` or ``'mse'`` (normalised space). method: degradation (default
            ``'bicubic'`` depth, ``'bilinear_aa'`` flow). guide_scale: initial learnable guide
            scale (None: the published structure). residual: predict a correction over bicubic
            (default True; False = the paper's direct prediction, much slower to reach bicubic).
        noise_std, holes: robustness degradations. occlusion: probability that a synthetic
            depth item loses its stereo-occluded ground truth
            (:func:`~pacup.train.synth.stereo_occlusion`). disparity, clutter: shares of
            synthetic depth items given as inverse depth / with cluttered rooms; frames: share
            of chair-like synthetic flow objects (:mod:`pacup.train.synth`); two_tone: share
            of synthetic flow layers painted in two textures split by a cut or stripes
            (colour edges that are no motion edges); guide_aug: share
            of synthetic guides given a camera's blur, colour, noise and JPEG
            (:func:`~pacup.train.synth.augment_guide`); guide_blur: largest sigma (px) of
            the Gaussian point-spread function every synthetic guide gets, drawn uniformly
            from [guide_blur / 3, guide_blur] (:func:`~pacup.train.synth.camera_blur`);
            guide_contrast: largest factor by which a synthetic guide's contrast is
            stretched, drawn log-uniformly from [1, guide_contrast]
            (:func:`~pacup.train.synth.stretch_contrast`; 1: off); texture_gain: largest
            factor by which a synthetic depth scene's surface textures are strengthened,
            drawn log-uniformly from [1, texture_gain] (:func:`~pacup.train.synth.render_depth_scene`;
            1: off).
            synthetic_pool, cache, workers: data.
        max_minutes: stop (and save) after this wall time (of this session). grad_clip: max gradient norm.
        zero_init_head: start the network's last convolution at zero (residual: at bicubic).
        negative_slope: slope below zero of every hidden activation (0: ReLU, the released
            models; e.g. 0.1 keeps a residual network from dying onto bicubic, see
            :mod:`pacup.models.network`). Ablations get the same.
        guide_pyramid: compute each decoder stage's guidance features on the guide pooled to
            that stage's size (:class:`~pacup.models.PacJointUpsample`); None: that of the
            ``init_from`` weights, else off. The ablations have no such features (K = 1 drops
            the guidance branch, the concat-CNN has its own).
        init_from: start from these weights (registry name or ``.safetensors``; the same
            architecture and task, the same factor or a smaller one, which is grown:
            :mod:`pacup.train.grow`) instead of a random init: fine-tuning.
        ema: decay of an exponential moving average of the weights (0: off; e.g. 0.998, a
            time constant of 500 steps); ``model.safetensors`` is then the average.

    Returns:
        ``{"step", "loss", "minutes", "out_dir", "model", "parameters", "val"...}``.
    """
    if cfg is None:
        cfg = TrainConfig(**kw)
    elif kw:
        cfg = TrainConfig(**{**asdict(cfg), **kw})
    if cfg.task not in ("depth", "flow"):
        raise ValueError(f"task must be 'depth' or 'flow', got {cfg.task!r}")
    if cfg.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
    if cfg.steps < 0 or cfg.batch < 1:
        raise ValueError("steps must be >= 0 and batch >= 1")
    if cfg.init_from and (cfg.init != "default" or cfg.zero_init_head):
        raise ValueError("--init-from replaces the initial weights: it cannot be combined with --init or "
                         "--zero-init-head")
    if cfg.variant is None:
        cfg.variant = _inherited(cfg, "variant", "lite")
    if cfg.guide_pyramid is None:
        cfg.guide_pyramid = bool(_inherited(cfg, "guide_pyramid", False))
    if not 0.0 <= cfg.ema < 1.0:
        raise ValueError(f"ema must be in [0, 1) (0: off), got {cfg.ema!r}")
    for name, task, off in (("occlusion", "depth", 0), ("disparity", "depth", 0), ("clutter", "depth", 0),
                            ("misalign", "depth", 0), ("texture_gain", "depth", 1), ("frames", "flow", 0),
                            ("two_tone", "flow", 0)):
        if getattr(cfg, name) != off and cfg.task != task:
            raise ValueError(f"{name} applies to synthetic {task} only")
    if isinstance(cfg.data, str):
        cfg.data = [cfg.data]
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for but CUDA is not available")
    amp = (device.type == "cuda") if cfg.amp is None else bool(cfg.amp and device.type == "cuda")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    model = build_train_model(cfg)
    state_path = out / "last_state.pt"
    resuming = cfg.resume and state_path.is_file()
    if cfg.init_from and not resuming:  # a resumed run's weights come from its checkpoint
        _init_from(model, cfg)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=_lr_at(cfg, 0))
    ema_model = _make_ema(model, cfg, None)
    start, seconds_before = 0, 0.0
    if resuming:
        _check_resume_config(cfg, out / "config.json")
        state = torch.load(state_path, map_location=device, weights_only=False)
        _load_weights(model, out / "last.safetensors")
        model.to(device)
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        ema_model = _make_ema(model, cfg, out if start else None)
        seconds_before = float(state.get("seconds", 0.0))  # training time of the earlier sessions
    elif not cfg.resume and (out / "log.jsonl").exists():
        (out / "log.jsonl").unlink()
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))

    ds = make_sources(cfg)
    n = len(ds)
    flow = cfg.task == "flow"
    val = _val_set(cfg) if cfg.val_every else None
    if cfg.workers > 0:
        loader = torch.utils.data.DataLoader(ds, batch_sampler=_StepSampler(start, cfg.steps, cfg.batch, n, cfg.seed),
                                             num_workers=cfg.workers, collate_fn=_collate,
                                             pin_memory=device.type == "cuda", persistent_workers=False)
        batches = iter(loader)
    else:
        batches = (_collate([ds[i] for i in batch_indices(t, cfg.batch, n, cfg.seed)]) for t in range(start, cfg.steps))

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    live = cfg.progress and console.is_terminal
    progress = Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, disable=not live)
    log = open(out / "log.jsonl", "a")
    t_begin = time.perf_counter()
    window, last = [], {}
    step = start
    completed = start  # optimizer steps taken: what a checkpoint written now would hold
    model.train()
    try:
        with progress:
            task_id = progress.add_task("train", total=cfg.steps, completed=start, loss="-")
            for step in range(start, cfg.steps):
                b = next(batches)
                xn, tn, tv = normalise_batch(b, cfg.factor, flow)
                xn, tn, tv = xn.to(device), tn.to(device), tv.to(device)
                g = b["guide"].to(device)
                for grp in opt.param_groups:
                    grp["lr"] = _lr_at(cfg, step)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    y = model(xn, g)
                loss = masked_loss(y, tn, tv, cfg.loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                completed = done = step + 1
                if ema_model is not None:
                    _ema_update(ema_model, model, min(cfg.ema, (1 + done) / (10 + done)))
                window.append(float(loss.detach()))
                progress.update(task_id, advance=1, loss=f"{np.mean(window[-cfg.log_every:]):.4f}")
                elapsed = time.perf_counter() - t_begin
                if done % cfg.log_every == 0 or done == cfg.steps:
                    last = {"step": done, "loss": float(np.mean(window)), "lr": _lr_at(cfg, step),
                            "seconds": round(seconds_before + elapsed, 2)}
                    gs = getattr(model, "guide_scale", None)
                    if isinstance(gs, torch.Tensor):
                        last["guide_scale"] = [round(float(v), 4) for v in gs.detach().cpu()]
                    if val is not None and (done % cfg.val_every == 0 or done == cfg.steps):
                        last.update(_validate(model, val, cfg, device))
                        if ema_model is not None:
                            last.update({f"ema_{k}": v for k, v in _validate(ema_model, val, cfg, device).items()})
                    window = []
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                    if not live and cfg.progress:
                        console.print(" ".join(f"{k}={v}" for k, v in last.items()))
                if done % cfg.ckpt_every == 0 and done < cfg.steps:
                    _save(model, opt, cfg, done, out, seconds=seconds_before + elapsed, ema_model=ema_model)
                if cfg.max_minutes is not None and elapsed > 60 * cfg.max_minutes:
                    break
        step_done = step + 1 if cfg.steps > start else start
    except KeyboardInterrupt:
        # Ctrl-C: keep what was learned; --resume continues from exactly this step.
        _save(model, opt, cfg, completed, out, seconds=seconds_before + time.perf_counter() - t_begin,
              ema_model=ema_model)
        raise
    finally:
        log.close()
    seconds = seconds_before + time.perf_counter() - t_begin
    minutes = seconds / 60
    summary = {"step": step_done, "loss": last.get("loss"), "minutes": round(minutes, 2),
               "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    if val is not None:
        summary.update({k: v for k, v in last.items() if k.startswith(("val", "ema_val"))})
    _save(model, opt, cfg, step_done, out, {"train_summary": summary}, final=True, seconds=seconds,
          ema_model=ema_model)
    summary.update(out_dir=str(out), model=str(out / "model.safetensors"))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _check_resume_config(cfg: TrainConfig, path: Path) -> None:
    """Refuse to resume a run with options that change its model or data (a run that
    silently switched recipe half-way is neither run): ValueError naming each option."""
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the run's configuration to resume it ({exc})") from exc
    defaults = asdict(TrainConfig())
    defaults["guide_pyramid"] = False  # what None resolves to for runs saved before the option
    now = asdict(cfg)
    diff = [f"{k} {now[k]!r} (the run has {saved.get(k, defaults[k])!r})" for k in now
            if k not in RESUME_MAY_CHANGE and _norm(saved.get(k, defaults[k])) != _norm(now[k])]
    if diff:
        raise ValueError(f"{path}: --resume with options that differ from the run's: " + "; ".join(diff)
                         + ". Give the run's own options again (only steps, synthetic_pool and the machine's "
                         "settings may change on resume).")


def _norm(v):
    """JSON round trip, so that a tuple and the list it was saved as compare equal."""
    return json.loads(json.dumps(v))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pacup.train.loop", description="Train a joint upsampling network.")
    d = TrainConfig()
    p.add_argument("--task", default=d.task, choices=["depth", "flow"])
    p.add_argument("--factor", type=int, default=d.factor)
    p.add_argument("--variant", default=None, choices=["lite", "full"],
                   help="default: lite, or the --init-from weights' variant")
    p.add_argument("--data", action="append", default=None, help="'synthetic' or a folder (repeatable)")
    for name in ("steps", "batch", "crop", "seed", "log_every", "ckpt_every", "synthetic_pool", "workers",
                 "val_every", "val_size", "warmup"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    for name in ("lr", "noise_std", "holes", "occlusion", "disparity", "clutter", "misalign", "frames", "two_tone",
                 "guide_aug", "guide_blur", "guide_contrast", "texture_gain", "ema"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name))
    p.add_argument("--out", default=d.out_dir)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", default=d.device)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ablation", default=None, choices=["k1", "concat"])
    p.add_argument("--loss", default=d.loss, choices=list(LOSSES))
    p.add_argument("--method", default=None)
    p.add_argument("--guide-scale", type=float, default=d.guide_scale, help="<= 0 for none (published structure)")
    p.add_argument("--residual", dest="residual", action="store_true", default=True,
                   help="predict a correction over bicubic (default)")
    p.add_argument("--direct", dest="residual", action="store_false", help="predict the signal itself (paper)")
    p.add_argument("--lr-schedule", default=d.lr_schedule, choices=["cosine", "constant"])
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--depth-scale", type=float, default=None)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--zero-init-head", action="store_true")
    p.add_argument("--negative-slope", type=float, default=d.negative_slope,
                   help="leaky ReLU slope of every hidden activation (0: ReLU)")
    p.add_argument("--guide-pyramid", action="store_true", default=None,
                   help="each decoder stage's guidance features computed on the guide pooled to its size "
                        "(default: that of the --init-from weights, else off)")
    p.add_argument("--init", default=d.init, choices=["default", "he"])
    p.add_argument("--init-from", default=None, help="start from these weights (name or .safetensors)")
    a = p.parse_args(argv)
    cfg = TrainConfig(task=a.task, factor=a.factor, variant=a.variant, data=a.data or ["synthetic"], steps=a.steps,
                      batch=a.batch, crop=a.crop, lr=a.lr, out_dir=a.out, resume=a.resume, device=a.device,
                      seed=a.seed, log_every=a.log_every, ckpt_every=a.ckpt_every, threads=a.threads,
                      ablation=a.ablation, loss=a.loss, method=a.method,
                      guide_scale=a.guide_scale if a.guide_scale and a.guide_scale > 0 else None,
                      residual=a.residual, noise_std=a.noise_std, holes=a.holes, occlusion=a.occlusion,
                      disparity=a.disparity, clutter=a.clutter, misalign=a.misalign, frames=a.frames,
                      two_tone=a.two_tone, warmup=a.warmup,
                      guide_aug=a.guide_aug, guide_blur=a.guide_blur, guide_contrast=a.guide_contrast,
                      texture_gain=a.texture_gain, ema=a.ema, synthetic_pool=a.synthetic_pool,
                      cache=not a.no_cache, workers=a.workers, amp=False if a.no_amp else None,
                      lr_schedule=a.lr_schedule, val_every=a.val_every, val_size=a.val_size,
                      max_minutes=a.max_minutes, grad_clip=a.grad_clip, depth_scale=a.depth_scale,
                      zero_init_head=a.zero_init_head, negative_slope=a.negative_slope, init=a.init,
                      guide_pyramid=a.guide_pyramid, init_from=a.init_from)
    s = train(cfg)
    print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
