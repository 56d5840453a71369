"""pacup: RGB-guided joint upsampling of depth maps and optical flow with pixel-adaptive
convolutions."""

__version__ = "0.1.0"
