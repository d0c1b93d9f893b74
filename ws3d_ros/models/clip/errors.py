"""Errors of the CLIP branch.

All derive from :class:`ws3d_ros.errors.Ws3dError`, so adapters that catch the
project base type also catch these. Each message says what is wrong and what
to do about it; callers print it as is.
"""

from ws3d_ros.errors import Ws3dError


class WeightsNotFoundError(Ws3dError, FileNotFoundError):
    """CLIP weights (a pretrained tag's cached file or a checkpoint path) are not on disk.

    The message names what is missing, every path searched, the command that
    fetches the weights on a connected machine, and how to point
    ``clip.pretrained`` at a local file instead.
    """


class CheckpointMismatchError(Ws3dError, ValueError):
    """A checkpoint file exists but does not fit the requested architecture."""


class UnsupportedModelError(Ws3dError, NotImplementedError):
    """The architecture name is unknown, or its image tower has no dense-feature path here."""


class ClipInputError(Ws3dError, ValueError):
    """Bad input to the CLIP branch: image layout, class names or prompt templates."""


class UnsafeCheckpointError(Ws3dError, ValueError):
    """A checkpoint file holds pickled objects other than tensors and plain containers.

    It is refused unread (``torch.load(weights_only=True)``): such a file could run code.
    """
