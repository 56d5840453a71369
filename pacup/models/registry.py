"""Named models, their weight files, and loading/saving of weights.

Each released model is a :class:`ModelEntry`: task (``'depth'`` or ``'flow'``), factor,
architecture config (a plain dict, see :func:`pacup.models.build_model`), the name of its
weight file in the top-level ``weights/`` folder, that file's sha256, measured scores and a
description. ``default_model(task, factor)`` names the model used when none is given.

Weight files are safetensors (no pickle). Their metadata holds ``pacup_format`` and the
architecture ``config`` as JSON, so that a user's own file loads by path without any
registry entry; :func:`save_model` writes such a file.

The registry lists ``depth-x2`` .. ``depth-x16`` and ``flow-x2`` .. ``flow-x16``, the defaults
of their task and factor, plus released alternatives named ``<task>-x<factor>-<tag>`` (such as
a faster Lite network where the default is full width); those in ``_RELEASED`` ship a weight
file (checked against its sha256 on load). Loading one whose file is absent raises
:class:`~pacup.errors.ModelNotAvailableError` unless ``allow_random=True``, which builds the
architecture with random weights (seeded, so runs repeat) and warns.

Where weight files are looked for (:func:`weights_dirs`): the folder(s) of the
``pacup._weights`` package (the ``weights/`` folder as shipped inside the wheel, found by
the import system), then the ``weights/`` folder of a source checkout next to the ``pacup``
package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError, ModelFileError, ModelNotAvailableError
from .network import PacJointUpsample, build_model

__all__ = [
    "ModelEntry", "RandomWeightsWarning", "TASKS", "default_model", "get_entry", "list_models",
    "load_model", "save_model", "weights_dirs", "file_sha256",
]

TASKS = ("depth", "flow")
FORMAT_VERSION = "1"
# Random weights are reproducible: the same seed every time they are built.
RANDOM_SEED = 0


class RandomWeightsWarning(UserWarning):
    """A model runs with random (untrained) weights."""


@dataclass(frozen=True)
class ModelEntry:
    """One named model.

    Attributes:
        name: registry name (``'depth-x8'``) or, for a file loaded by path, its stem.
        task: ``'depth'`` or ``'flow'`` (None when a file does not say).
        factor: upsampling factor of the network.
        config: architecture config (``build_model(config)`` rebuilds it).
        file: weight file name inside ``weights/`` (registry) or the path loaded.
        sha256: expected checksum of the file (None: not released yet).
        scores: measured scores, e.g. ``{'nyu_rmse_cm_protocol_A': 4.59}`` (may be empty).
        description: one or two sentences: training data, protocol, caveats.
    """

    name: str
    task: str | None
    factor: int
    config: dict
    file: str
    sha256: str | None = None
    scores: dict = field(default_factory=dict)
    description: str = ""

    @property
    def available(self) -> bool:
        """Whether the weight file is present (a registry file in a weights folder, or the path)."""
        if os.path.isabs(self.file) or os.sep in self.file:
            return os.path.isfile(self.file)
        return _find_weight_file(self) is not None


def _config(factor: int, arch: str | dict = "lite") -> dict:
    # What `pacup train --variant V [--negative-slope S]` builds: that variant's widths, a
    # residual over bicubic. ``arch``: the variant, or a dict of PacJointUpsample options.
    opts = {"variant": arch} if isinstance(arch, str) else dict(arch)
    return PacJointUpsample(factor, residual=True, **opts).config


def arch_words(config: dict) -> str:
    """'PacJointUpsample Full', '... Lite with leaky ReLU 0.1': the network a config builds."""
    words = f"PacJointUpsample {config['variant'].capitalize()}"
    extras = []
    if config.get("negative_slope"):
        extras.append(f"leaky ReLU {config['negative_slope']:g}")
    if config.get("guide_pyramid"):
        extras.append("pyramid guidance")
    if extras:
        words += " with " + " and ".join(extras)
    return words


# Released weights, trained by `pacup train` and measured by `pacup eval` (weights/README.md
# gives the data, schedule, compute and every score): name -> (sha256 of the file, scores,
# network variant, or a dict of PacJointUpsample options such as {"variant": "full",
# "negative_slope": 0.1} or {"variant": "full", "guide_pyramid": True}). Written by
# `python -m pacup.train.release --write-weights`.
_RELEASED: dict[str, tuple[str, dict, str | dict]] = {
    "depth-x16": ("73979a727706cdb2e344dbe03b7e0555ef7668a7c68d335a36bd91668f604fd3", {"motorcycle_rmse_255": 12.6241, "vs_bicubic": 0.763}, "full"),
    "depth-x16-lite": ("52fcdaf4fd2a636ce792532c52bbf22d2b0537c8620291e210791ef80dae9d91", {"motorcycle_rmse_255": 15.1152, "vs_bicubic": 0.913}, "lite"),
    "depth-x4": ("1ae869c5674a1d75388f3bc5c191c9477ece96d682a8927c61c302114a34ba7f", {"motorcycle_rmse_255": 5.576, "vs_bicubic": 0.747}, "lite"),
    "depth-x8": ("cd5471968fb07ec5bd5e0780a82c8df2de30043fd0a44f4c840f3856ca882e8f", {"motorcycle_rmse_255": 8.0858, "vs_bicubic": 0.695}, "full"),
    "depth-x8-lite": ("6525ac698b360604100700a4043d54ea3d170236027d7c89ccce00de04a91571", {"motorcycle_rmse_255": 8.8546, "vs_bicubic": 0.761}, "lite"),
    "flow-x16": ("d9d10d50aa385a3a2316e77d2ce5d3d2f0f03b60c3f67e94fd8cba315be69b8b", {"flyingchairs9_epe": 1.0753, "vs_bicubic": 0.643},
                 {"variant": "full", "negative_slope": 0.1}),
    "flow-x16-lite": ("66ab670ca6a57f39b3edeacf312057889d17d30e7d14009ee74fc6ae31529795", {"flyingchairs9_epe": 1.3849, "vs_bicubic": 0.828}, "lite"),
    "flow-x4": ("dff0d857af0c24d4979283f4d7739e6c40e748bf667793f33a6a5c5fe05fcc00", {"flyingchairs9_epe": 0.2268, "vs_bicubic": 0.375},
                {"variant": "full", "negative_slope": 0.1}),
    "flow-x4-lite": ("55c0be47471975a1c660ef4eed83d60fc169fd5bade650f4b6c969e4eaaf3b23", {"flyingchairs9_epe": 0.2721, "vs_bicubic": 0.45}, "lite"),
    "flow-x8": ("41337705d7f08328762fbd93e80bad38fe9cd45330e0662e68af1aa08794a408", {"flyingchairs9_epe": 0.5137, "vs_bicubic": 0.48},
                {"variant": "full", "negative_slope": 0.1}),
    "flow-x8-lite": ("a0639b45b80efb59ad810fdf2142969acf75fbe4f0d597bc0356fd876c475cb4", {"flyingchairs9_epe": 0.6766, "vs_bicubic": 0.632}, "lite"),
}


def _entry(task: str, factor: int, name: str | None = None) -> ModelEntry:
    name = name or f"{task}-x{factor}"
    what = "depth maps" if task == "depth" else "optical flow (u and v as separate maps)"
    sha, scores, variant = _RELEASED.get(name, (None, {}, "lite"))
    config = _config(factor, variant)
    arch = f"{arch_words(config)} (residual over bicubic) for x{factor} upsampling of {what}"
    if sha is not None:
        data = "synthetic RGB-D rooms" if task == "depth" else "synthetic FlyingChairs-style layers"
        dev = "Middlebury motorcycle, protocol B" if task == "depth" else "FlyingChairs (9 pairs)"
        description = f"{arch}; trained on {data} only; scores on {dev}."
    else:
        description = f"{arch}. Not trained yet: no weight file is shipped."
    return ModelEntry(name=name, task=task, factor=factor, config=config, file=f"{name}.safetensors",
                      sha256=sha, scores=dict(scores), description=description)


def _alternative(name: str) -> ModelEntry:
    # A released model that is not its factor's default: "<task>-x<factor>-<tag>".
    task, f, _ = name.split("-", 2)
    e = _entry(task, int(f.removeprefix("x")), name)
    note = f" Not the default at x{e.factor} ({task}-x{e.factor} is): give --model {name}."
    return dataclasses.replace(e, description=e.description + note)


_DEFAULTS: dict[tuple[str, int], str] = {(t, f): f"{t}-x{f}" for t in TASKS for f in (2, 4, 8, 16)}
_REGISTRY: dict[str, ModelEntry] = {n: _entry(t, f) for (t, f), n in _DEFAULTS.items()}
_REGISTRY.update({n: _alternative(n) for n in _RELEASED if n not in _REGISTRY})


def list_models(task: str | None = None) -> list[ModelEntry]:
    """Registry entries (optionally of one task), sorted by task then factor."""
    if task is not None:
        _check_task(task)
    entries = [e for e in _REGISTRY.values() if task is None or e.task == task]
    return sorted(entries, key=lambda e: (e.task, e.factor, e.name))


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``.

    Raises:
        ModelNotAvailableError: unknown name (the message lists the known ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelNotAvailableError(
            f"unknown model {name!r}: known models are {', '.join(sorted(_REGISTRY))} "
            "(or give the path of a .safetensors file)"
        ) from None


def default_model(task: str, factor: int) -> str:
    """Name of the model used for ``task`` at ``factor`` when none is given.

    Raises:
        InputError: unknown task or a factor without a default model.
    """
    _check_task(task)
    try:
        return _DEFAULTS[(task, factor)]
    except KeyError:
        have = sorted(f for t, f in _DEFAULTS if t == task)
        raise InputError(f"no {task} model for factor {factor}: available factors are {have}") from None


def _check_task(task):
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}: expected one of {TASKS}")


def weights_dirs() -> list[Path]:
    """Folders searched for registry weight files, in order: the ``pacup._weights`` package
    (the wheel's copy of ``weights/``; a namespace package, so it may span folders), then
    the ``weights/`` folder of a source checkout."""
    dirs = []
    try:
        spec = importlib.util.find_spec("pacup._weights")
    except (ModuleNotFoundError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        # Only real folders: safetensors memory-maps the file (a zipped install has none).
        if Path(loc).is_dir():
            dirs.append(Path(loc))
    repo = Path(__file__).resolve().parents[2] / "weights"
    if repo.is_dir() and repo not in dirs:
        dirs.append(repo)
    return dirs


def _find_weight_file(entry: ModelEntry) -> Path | None:
    for d in weights_dirs():
        p = d / entry.file
        if p.is_file():
            return p
    return None


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _random_model(config: dict, what: str) -> nn.Module:
    warnings.warn(
        f"{what}: running with RANDOM (untrained) weights; the output is not a meaningful "
        "upsampling. Use it to test the pipeline only.",
        RandomWeightsWarning, stacklevel=3,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return build_model(config)


def _is_path_like(x) -> bool:
    if isinstance(x, os.PathLike):
        return True
    s = str(x)
    return s.endswith(".safetensors") or os.sep in s or (os.altsep is not None and os.altsep in s) or os.path.exists(s)


def load_model(name_or_path=None, task: str | None = None, factor: int | None = None,
               allow_random: bool = False) -> tuple[nn.Module, ModelEntry]:
    """Load a model by registry name or from a ``.safetensors`` file.

    Args:
        name_or_path: a registry name (``'depth-x8'``), a path to a weight file written by
            :func:`save_model`, or None for ``default_model(task, factor)``.
        task: checked against the entry (and needed, with ``factor``, when no name is given).
        factor: checked against the model's factor.
        allow_random: when a registry model has no weight file, build it with random
            weights (seeded with ``RANDOM_SEED``) and warn instead of raising.

    Returns:
        (model in eval mode on the CPU, its :class:`ModelEntry`).

    Raises:
        ModelNotAvailableError: unknown name, or no weight file shipped (without
            ``allow_random``).
        ModelFileError: file missing, unreadable, checksum mismatch, not a pacup file, or
            weights that do not fit the config.
        InputError: the model's task or factor differs from the ones asked for.
    """
    if name_or_path is None:
        if task is None or factor is None:
            raise InputError("load_model needs a model name or path, or both task and factor")
        name_or_path = default_model(task, factor)
    if isinstance(name_or_path, str) and name_or_path in _REGISTRY:
        entry = _REGISTRY[name_or_path]
        model = _load_entry(entry, allow_random)
    elif _is_path_like(name_or_path):
        model, entry = _load_file(Path(name_or_path))
    else:
        get_entry(str(name_or_path))  # raises with the list of known names
        raise AssertionError("unreachable")
    if task is not None and entry.task is not None and entry.task != task:
        raise InputError(f"model {entry.name!r} is a {entry.task} model, not a {task} model")
    if factor is not None and entry.factor != factor:
        raise InputError(f"model {entry.name!r} upsamples x{entry.factor}, but x{factor} is needed")
    return model.eval(), entry


def _load_entry(entry: ModelEntry, allow_random: bool) -> nn.Module:
    path = _find_weight_file(entry)
    if path is None:
        if allow_random:
            return _random_model(entry.config, f"model {entry.name!r}")
        where = ", ".join(str(d) for d in weights_dirs()) or "no weights folder found"
        raise ModelNotAvailableError(
            f"model {entry.name!r}: no trained weights are installed for it (file {entry.file!r} not found in "
            f"{where}). Pass allow_random=True (CLI: --random-weights) to run with random weights, "
            "or give the path of your own trained .safetensors file."
        )
    if entry.sha256 is None:
        raise ModelFileError(f"{path}: the registry entry {entry.name!r} has no sha256 to verify this file against")
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise ModelFileError(
            f"{path}: checksum mismatch for model {entry.name!r} (expected sha256 {entry.sha256}, got {actual}); "
            "the file is corrupt or not the released one"
        )
    model, meta_config, _ = _read_weights(path)
    # The rebuilt model's config: options a file written before they existed fill in with
    # their defaults (a file without ``negative_slope`` is the ReLU network it always was).
    if _comparable(model.config) != _comparable(entry.config):
        raise ModelFileError(f"{path}: its config {meta_config} differs from the registry entry's {entry.config}")
    return model


def _comparable(config: dict) -> dict:
    return json.loads(json.dumps(config, sort_keys=True))


def _read_weights(path: Path) -> tuple[nn.Module, dict, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    if not path.is_file():
        raise ModelFileError(f"{path}: model file does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc})") from None
    if "config" not in metadata:
        raise ModelFileError(f"{path}: no pacup model config in the safetensors metadata "
                             "(write model files with pacup.models.save_model)")
    fmt = metadata.get("pacup_format")
    if fmt != FORMAT_VERSION:
        raise ModelFileError(f"{path}: pacup_format {fmt!r} is not supported (expected {FORMAT_VERSION!r})")
    try:
        config = json.loads(metadata["config"])
        model = build_model(config)
    except (json.JSONDecodeError, InputError) as exc:
        raise ModelFileError(f"{path}: bad model config in metadata: {exc}") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelFileError(f"{path}: weights do not fit the config {config}: {' '.join(first[:3])}") from None
    return model, config, metadata


def _load_file(path: Path) -> tuple[nn.Module, ModelEntry]:
    model, config, metadata = _read_weights(path)
    def meta_json(key, default):
        try:
            return json.loads(metadata[key]) if key in metadata else default
        except json.JSONDecodeError:
            return metadata[key]

    task = metadata.get("task")
    entry = ModelEntry(
        name=path.name.removesuffix(".safetensors"), task=task if task in TASKS else None,
        factor=int(config.get("factor")), config=dict(model.config), file=str(path), sha256=file_sha256(path),
        scores=meta_json("scores", {}), description=metadata.get("description", ""),
    )
    return model, entry


def _canonical_header(data: bytes) -> bytes:
    """The same safetensors file with its header's keys sorted. safetensors writes its JSON
    header from a hash map, so the same tensors and metadata came out in a different key
    order (and so a different sha256) from one save to the next."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    canon = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(canon) > n:  # cannot happen for a reordering; keep the file as written
        return data
    return data[:8] + canon + b" " * (n - len(canon)) + data[8 + n:]  # the format pads headers with spaces


def save_model(model: nn.Module, path: str | os.PathLike, extra_metadata: dict | None = None) -> str:
    """Write ``model`` as a pacup ``.safetensors`` file (atomically).

    The metadata holds ``pacup_format``, ``config`` (JSON of ``model.config``) and every
    item of ``extra_metadata`` (strings as they are, anything else as JSON). Useful keys the
    loader reads back: ``task`` (``'depth'``/``'flow'``), ``description``, ``scores``.

    Args:
        model: a network with a ``config`` dict (e.g. :class:`PacJointUpsample`).
        path: destination file; its folder must exist.
        extra_metadata: more metadata (training data, protocol, scores...).

    Returns:
        The file's sha256 (for a registry entry).

    Raises:
        InputError: the model has no ``config`` or the metadata overrides a reserved key.
        ModelFileError: the file cannot be written.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise InputError(f"{type(model).__name__} has no config dict: only pacup models can be saved")
    metadata = {"pacup_format": FORMAT_VERSION, "config": json.dumps(config, sort_keys=True)}
    for key, value in (extra_metadata or {}).items():
        if key in metadata:
            raise InputError(f"extra_metadata must not override {key!r}")
        metadata[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if "task" in metadata and metadata["task"] not in TASKS:
        raise InputError(f"metadata task must be one of {TASKS}, got {metadata['task']!r}")
    # Stored as float32 whatever the model's dtype (a half-precision CUDA model saves the same file).
    tensors = {k: (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()).contiguous()
               for k, v in model.state_dict().items()}
    path = Path(path)
    if not path.parent.is_dir():
        raise ModelFileError(f"{path}: folder {path.parent} does not exist")
    from safetensors.torch import save

    from ..io._files import atomic_write
    from ..io.errors import WriteError

    data = _canonical_header(save(tensors, metadata=metadata))
    try:
        # A temporary file renamed over ``path``, created like a plain open() (umask), not
        # mkstemp's owner-only 0600: a model written for a team must be readable by it.
        atomic_write(path, lambda fh: fh.write(data))
    except WriteError as exc:
        raise ModelFileError(f"{path}: cannot write model file ({exc.problem})") from None
    return file_sha256(path)

