"""File formats for pacup: depth, optical flow, guide images and visualisations.

Everything takes and returns numpy arrays and knows nothing about models. File problems
raise :class:`ReadError` / :class:`WriteError` (both :class:`PacupIOError`) with a one-line
message naming the file; writers are atomic.
"""

from .depth import SUPPORTED_DEPTH, read_depth, write_depth
from .errors import PacupIOError, ReadError, WriteError
from .flow import SUPPORTED_FLOW, read_flow, write_flow
from .image import read_guide, write_image
from .vis import colorize_depth, colorize_flow, side_by_side

__all__ = [
    "SUPPORTED_DEPTH",
    "SUPPORTED_FLOW",
    "PacupIOError",
    "ReadError",
    "WriteError",
    "colorize_depth",
    "colorize_flow",
    "read_depth",
    "read_flow",
    "read_guide",
    "side_by_side",
    "write_depth",
    "write_flow",
    "write_image",
]
