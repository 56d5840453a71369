"""RGB guide images (read) and 8-bit visualisations (write)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ._decode import open_pillow
from ._files import PathLike, atomic_write, extension, read_bytes
from .errors import ReadError, WriteError

_COMMON_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_guide(path: PathLike) -> np.ndarray:
    """Read the RGB guide image.

    Any format Pillow can decode is accepted. Greyscale, palette, RGBA/LA (alpha dropped)
    and CMYK images are converted to RGB; 16-bit greyscale is rescaled to 8 bits (16-bit RGB
    PNGs are reduced to 8 bits by Pillow itself). EXIF orientation is deliberately *not*
    applied: the guide must stay pixel-aligned with the depth/flow, which never carries it.

    Args:
        path: Image file.

    Returns:
        uint8 array (H, W, 3).

    Raises:
        ReadError: Missing file, undecodable image, or a floating-point image.
    """
    image = open_pillow(read_bytes(path), path, "image")
    if image.mode.startswith("I"):
        # 16-bit greyscale ("I;16*"; some Pillow versions/formats give 32-bit "I" for it):
        # map 0..65535 to 0..255 with rounding (65535 / 257 = 255).
        grey = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        grey = ((grey + 128) // 257).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        raise ReadError(path, "floating-point image cannot be used as an RGB guide")
    try:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except Exception as exc:  # noqa: BLE001 - unusual modes Pillow cannot convert
        raise ReadError(path, f"cannot convert image mode {image.mode} to RGB: {exc}") from None


def write_image(path: PathLike, image) -> None:
    """Write an 8-bit RGB (or greyscale) image atomically, format chosen by extension.

    Args:
        path: Destination, e.g. ``vis.png`` or ``vis.jpg`` (any extension Pillow can write;
            JPEG is written at quality 95). Its directory must exist.
        image: uint8 array (H, W, 3) or (H, W).

    Raises:
        WriteError: Unknown extension, wrong dtype/shape, or the file cannot be written.
    """
    ext = extension(path)
    image_format = Image.registered_extensions().get(ext)
    if image_format is None:
        shown = f"'{ext}'" if ext else "no extension"
        examples = ", ".join(_COMMON_IMAGE_EXTENSIONS)
        raise WriteError(path, f"unknown image file extension ({shown}); use e.g. {examples}")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise WriteError(path, f"image must be uint8, got dtype {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or 0 in arr.shape:
        raise WriteError(path, f"image has shape {arr.shape}; expected HxWx3 or HxW")
    options = {"quality": 95} if image_format == "JPEG" else {}
    buf = io.BytesIO()
    try:
        Image.fromarray(np.ascontiguousarray(arr)).save(buf, format=image_format, **options)
    except Exception as exc:  # noqa: BLE001 - Pillow encoders raise OSError/ValueError/KeyError
        raise WriteError(path, f"cannot encode as {image_format}: {exc}") from None
    payload = buf.getvalue()
    atomic_write(path, lambda fh: fh.write(payload))
