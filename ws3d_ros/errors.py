"""Project-wide exception types.

Every error that bad input can cause derives from :class:`Ws3dError`, so an
adapter (node, CLI) can catch one type, count the drop and keep running.
"""


class Ws3dError(Exception):
    """Base class of all errors raised by ws3d_ros on bad input or set-up."""


class MessageFormatError(Ws3dError, ValueError):
    """A ROS message is malformed or uses an encoding/layout we cannot read.

    The message text says what is wrong (which field, expected vs found).
    """


class CalibrationError(Ws3dError, ValueError):
    """A camera model or extrinsic calibration is missing, degenerate or unreadable."""


class BagError(Ws3dError):
    """A bag cannot be opened, or lacks the topics/calibration a task needs."""
