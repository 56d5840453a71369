"""Running exported models in ONNX Runtime, without PyTorch.

:class:`OnnxBackend` stands in for the PyTorch network in the pipeline: called with the
normalised low-resolution signal (B, C, h, w) and guide (B, 3, factor*h, factor*w) it returns
(B, C, factor*h, factor*w), as ``PacJointUpsample`` does. It accepts NumPy arrays (returns
NumPy) or torch tensors (returns a tensor on the input's device and dtype); torch is not
needed for the NumPy path.

onnxruntime (``pacup-upsampling[cpu]``) or onnxruntime-gpu (``[gpu]``) must be installed,
never both: the two packages overwrite each other's files.
"""

from __future__ import annotations

import warnings

import numpy as np

from .library import library_path

__all__ = ["OnnxBackend", "make_session", "DEVICES"]

_DOMAIN = "pacup"  # pacup.onnx._graph.DOMAIN (not imported: the runtime does not need onnx)

DEVICES = ("auto", "cpu", "cuda")


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("running ONNX models needs onnxruntime: pip install 'pacup-upsampling[cpu]' "
                          "(or 'pacup-upsampling[gpu]' for CUDA; never both)") from None
    return ort


def _providers(device: str) -> list[str]:
    ort = _ort()
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError(f"device='cuda' but this onnxruntime has no CUDA provider (available: {available}); "
                               "install pacup-upsampling[gpu] (onnxruntime-gpu) instead of [cpu]")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        return (["CUDAExecutionProvider", "CPUExecutionProvider"] if "CUDAExecutionProvider" in available
                else ["CPUExecutionProvider"])
    raise ValueError(f"device must be one of {DEVICES}, got {device!r}")


def make_session(path, providers=None, library="auto", threads: int | None = None, options=None):
    """An ``onnxruntime.InferenceSession`` for ``path`` with the pacup custom ops registered.

    Args:
        path: an ``.onnx`` file, or a serialized model (bytes).
        library: ``"auto"`` (:func:`pacup.onnx.library_path`), a path, or None (custom nodes
            then run their standard-operator fallback bodies).
        threads: intra-op threads (default: ONNX Runtime's choice).
        options: an ``onnxruntime.SessionOptions`` to start from.

    A library that fails to register (e.g. ONNX Runtime older than 1.17) gives a warning and
    a session without it.
    """
    ort = _ort()
    so = options or ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    lib = library_path() if library == "auto" else library
    if lib:
        try:
            so.register_custom_ops_library(str(lib))
        except Exception as exc:  # noqa: BLE001 - the fallback bodies still run
            warnings.warn(f"could not register the pacup custom-op library {lib} ({exc}); "
                          "custom nodes run their standard-operator fallback", RuntimeWarning, stacklevel=2)
    model = path if isinstance(path, (bytes, bytearray)) else str(path)  # a file or serialized bytes
    return ort.InferenceSession(model, so, providers=providers or ["CPUExecutionProvider"])


class OnnxBackend:
    """An exported pacup model in an ONNX Runtime session.

    Args:
        path: ``.onnx`` file written by :func:`pacup.onnx.export_model`.
        device: ``"auto"`` (CUDA provider when onnxruntime-gpu has one, else CPU), ``"cpu"``
            or ``"cuda"``.
        library: custom-op library (``"auto"``, a path, or None for the fallback bodies).
        threads: intra-op threads of the CPU provider.

    Attributes:
        factor, receptive_radius, config: read from the file's metadata (None if absent).
        providers: the session's providers, in priority order.
        native: whether the custom-op library is registered for a ``custom`` model.

    Example:
        >>> backend = OnnxBackend("pac_x8.onnx")
        >>> out = backend(low, guide)  # (1, 1, 60, 80), (1, 3, 480, 640) -> (1, 1, 480, 640)
    """

    def __init__(self, path, device: str = "auto", library="auto", threads: int | None = None):
        ort = _ort()
        self.path = str(path)
        self.device = device
        lib = library_path() if library == "auto" else library
        self.session = make_session(self.path, _providers(device), lib, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.mode = meta.get("pacup.mode")
        self.factor = int(meta["pacup.factor"]) if "pacup.factor" in meta else None
        self.receptive_radius = int(meta["pacup.receptive_radius"]) if "pacup.receptive_radius" in meta else None
        self.config = None
        if "pacup.config" in meta:
            import json

            self.config = json.loads(meta["pacup.config"])
        self.providers = self.session.get_providers()
        self.native = bool(lib) and self.mode == "custom"
        if self.mode == "custom" and library == "auto" and not lib:
            # pip hides the build's own warning: say it where it matters.
            warnings.warn("the pacup custom-op library is not installed (its build failed or was skipped; "
                          "'pip install -v' shows why): this custom model runs its standard-operator fallback",
                          RuntimeWarning, stacklevel=2)
        inputs = self.session.get_inputs()
        if len(inputs) != 2:
            raise ValueError(f"{self.path}: expected a model with inputs (low, guide), found {len(inputs)} inputs")
        self._names = [i.name for i in inputs]
        self._dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        self._channels = inputs[0].shape[1] if isinstance(inputs[0].shape[1], int) else None
        del ort

    def __repr__(self):
        return (f"OnnxBackend({self.path!r}, mode={self.mode}, factor={self.factor}, providers={self.providers}, "
                f"native={self.native})")

    def run(self, low: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """NumPy in, NumPy (float32) out: low (B, C, h, w), guide (B, 3, H, W) -> (B, C, H, W).

        Signal channels beyond the model's (flow's u and v through a 1-channel network) are
        run as separate samples sharing their image's guide, like the PyTorch network.
        """
        low = np.asarray(low)
        guide = np.asarray(guide)
        if low.ndim != 4 or guide.ndim != 4 or guide.shape[0] != low.shape[0]:
            raise ValueError(f"expected low (B, C, h, w) and guide (B, 3, H, W) with the same B, got "
                             f"{low.shape} and {guide.shape}")
        b, c, h, w = low.shape
        if self._channels is not None and c != self._channels:
            low = low.reshape(b * c, 1, h, w)
            guide = np.repeat(guide, c, axis=0)
        feeds = {self._names[0]: np.ascontiguousarray(low, dtype=self._dtype),
                 self._names[1]: np.ascontiguousarray(guide, dtype=self._dtype)}
        out = self.session.run(None, feeds)[0].astype(np.float32, copy=False)
        return out.reshape(b, c, *out.shape[-2:])

    def __call__(self, low, guide):
        """Same as :meth:`run`; torch tensors in give a tensor out (input's device and dtype)."""
        if type(low).__module__.startswith("torch"):
            import torch

            out = self.run(low.detach().float().cpu().numpy(), guide.detach().float().cpu().numpy())
            return torch.from_numpy(out).to(device=low.device, dtype=low.dtype)
        return self.run(low, guide)

    @property
    def uses_custom_ops(self) -> bool:
        """Whether the model has ``pacup::`` nodes (a ``custom`` export)."""
        return self.mode == "custom"


def custom_node_count(path) -> int:
    """Number of ``pacup::`` nodes in an ONNX file (0 for portable exports)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return sum(1 for n in model.graph.node if n.domain == _DOMAIN)
