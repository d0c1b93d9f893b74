"""Pinhole camera models with ROS ``CameraInfo`` distortion: project, unproject, pixel rays.

Contract:
- :class:`CameraModel` holds one camera's intrinsics as ``sensor_msgs/CameraInfo``
  carries them (``K``, ``D``, ``distortion_model``, ``R``, ``P``) and is validated on
  construction: a degenerate or unreadable calibration raises
  :class:`~ws3d_ros.errors.CalibrationError` saying which field is wrong.
- Distortion models (:data:`DISTORTION_MODELS`): ``none``; ``plumb_bob`` (5 coefficients
  k1 k2 p1 p2 k3); ``rational_polynomial`` (8: k1 k2 p1 p2 k3 k4 k5 k6, OpenCV's
  ``CALIB_RATIONAL_MODEL``; 12 or 14 accepted when the thin-prism/tilt terms beyond 8 are
  zero); ``equidistant`` (4: k1..k4, OpenCV's fisheye model; ``fisheye`` is read as an
  alias). An empty ``D`` means "no distortion" for every model, as many drivers publish it.
- :meth:`CameraModel.project` maps points of the optical frame (z forward, x right,
  y down) to distorted pixels; it equals ``cv2.projectPoints`` / ``cv2.fisheye.projectPoints``
  (vectorised numpy, no OpenCV needed). Points with ``z <= 0`` get NaN pixels.
- :meth:`CameraModel.unproject` inverts it by Newton iteration to far below 1e-6 px;
  pixels without a physical pre-image (past the fold of the distortion polynomial) get NaN.
- Raw images: projection uses ``K`` and ``D``; ``R`` and ``P`` (rectification) are kept for
  the round trip to ``CameraInfo`` only.
- Pixel convention of the project: continuous coordinates in which pixel (row ``r``,
  column ``c``) covers ``[c, c+1) x [r, r+1)``; the image is ``0 <= u < width``,
  ``0 <= v < height``, ``floor`` gives the pixel, and :meth:`CameraModel.pixel_rays` casts
  through the centres ``(c + 0.5, r + 0.5)``. (OpenCV puts centres at integers; the two
  differ by half a pixel, which the project's sampling ignores consistently.)
- :attr:`CameraModel.fov_mask_bounds` is the largest undistorted normalised radius a point
  may have and still be seen (from the image border, plus a margin, capped at the fold of
  the radial polynomial): the wrap-around guard of :mod:`ws3d_ros.geometry.projection`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ws3d_ros.errors import CalibrationError, MessageFormatError

DISTORTION_MODELS = ("none", "plumb_bob", "rational_polynomial", "equidistant")
_ALIASES = {"fisheye": "equidistant", "": "none"}
_N_COEFFS = {"none": 0, "plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}

# Border radius margin of the wrap-around guard: points just outside the image still pass
# (they fail the bounds check), points far outside cannot alias back in.
FOV_MARGIN = 0.05
_NEWTON_ITERS = 50
_NEWTON_TOL = 1e-14


def _matrix(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64).reshape(-1)  # a copy: we freeze it
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{name} is not numeric: {exc}") from None
    size = shape[0] * shape[1]
    if arr.size != size:
        raise CalibrationError(
            f"{name} must have {size} values ({shape[0]}x{shape[1]}), found {arr.size}"
        )
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{name} has non-finite values: {arr.tolist()}")
    return arr.reshape(shape)


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def normalize_distortion_model(name: str) -> str:
    """Canonical model name (``fisheye`` -> ``equidistant``, ``""`` -> ``none``) or raise."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DISTORTION_MODELS:
        raise CalibrationError(
            f"unknown distortion_model {name!r}; expected one of {DISTORTION_MODELS} or 'fisheye'"
        )
    return key


@dataclass(frozen=True, eq=False)
class CameraModel:
    """One camera's intrinsics (see the module docstring for conventions)."""

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray
    distortion_model: str = "plumb_bob"
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    P: np.ndarray | None = None
    frame_id: str = ""

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        for name in ("width", "height"):
            value = getattr(self, name)
            try:
                ok = not isinstance(value, bool) and int(value) == value and int(value) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise CalibrationError(f"camera {name} must be a positive integer, found {value!r}")
            set_(name, int(value))
        K = _matrix(self.K, (3, 3), "K")
        if not np.any(K):
            raise CalibrationError("K is all zeros (camera not calibrated)")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CalibrationError(f"K focal lengths must be > 0, found fx={K[0, 0]} fy={K[1, 1]}")
        if np.max(np.abs(K[2] - (0.0, 0.0, 1.0))) > 1e-9:
            raise CalibrationError(f"K's last row must be [0, 0, 1], found {K[2].tolist()}")
        set_("K", _readonly(K))

        model = normalize_distortion_model(self.distortion_model)
        try:
            D = np.asarray(self.D, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"D is not numeric: {exc}") from None
        if not np.all(np.isfinite(D)):
            raise CalibrationError(f"D has non-finite values: {D.tolist()}")
        set_("distortion_model", model)
        set_("D", _readonly(self._canonical_d(model, D)))

        R = _matrix(self.R, (3, 3), "R")
        set_("R", _readonly(np.eye(3) if not np.any(R) else R))  # all-zero R: unset in the msg
        P = None if self.P is None else _matrix(self.P, (3, 4), "P")
        if P is None or not np.any(P):
            P = np.hstack([K, np.zeros((3, 1))])
        set_("P", _readonly(P))
        set_("frame_id", str(self.frame_id))
        set_("_rays", {})

    @staticmethod
    def _canonical_d(model: str, D: np.ndarray) -> np.ndarray:
        n = _N_COEFFS[model]
        if D.size == 0:
            return np.zeros(n)
        if model == "none":
            if np.any(D):
                raise CalibrationError(f"distortion_model 'none' with non-zero D {D.tolist()}")
            return np.zeros(0)
        if model == "rational_polynomial" and D.size in (12, 14):
            if np.any(D[8:]):
                raise CalibrationError(
                    "rational_polynomial: thin-prism/tilt coefficients D[8:] are not supported, "
                    f"found {D[8:].tolist()}"
                )
            return D[:8].copy()
        if D.size != n:
            raise CalibrationError(
                f"distortion_model {model!r} needs {n} D coefficients, found {D.size}"
            )
        return D.copy()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_intrinsics(
        cls,
        width: int,
        height: int,
        fx: float,
        fy: float,
        cx: float,
        cy: float,
        D: Any = (),
        distortion_model: str = "plumb_bob",
        frame_id: str = "",
    ) -> CameraModel:
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
        return cls(width, height, K, np.asarray(D, np.float64), distortion_model, frame_id=frame_id)

    @classmethod
    def from_camera_info(cls, msg: Any) -> CameraModel:
        """From a ``sensor_msgs/CameraInfo`` of rclpy or rosbags (read by duck typing).

        Binning and a region of interest, when set, are applied to ``K`` and the image size
        so the model describes the image actually published.
        """
        try:
            width, height = int(msg.width), int(msg.height)
            k, d, r, p = msg.k, msg.d, msg.r, msg.p
            model = msg.distortion_model
            frame_id = msg.header.frame_id
        except AttributeError as exc:
            raise MessageFormatError(f"not a CameraInfo message: {exc}") from None
        K = _matrix(k, (3, 3), "K")
        P = _matrix(p, (3, 4), "P")
        bx = max(int(getattr(msg, "binning_x", 0) or 0), 1)
        by = max(int(getattr(msg, "binning_y", 0) or 0), 1)
        roi = getattr(msg, "roi", None)
        x0 = y0 = 0
        if roi is not None and (roi.width or roi.height or roi.x_offset or roi.y_offset):
            x0, y0 = int(roi.x_offset), int(roi.y_offset)
            width = int(roi.width) or width
            height = int(roi.height) or height
        if (bx, by, x0, y0) != (1, 1, 0, 0):
            scale = np.diag([1.0 / bx, 1.0 / by, 1.0])
            shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
            K = scale @ shift @ K
            P = scale @ shift @ P
            width, height = width // bx, height // by
        return cls(
            width,
            height,
            K,
            np.asarray(d, np.float64),
            str(model),
            R=r,
            P=P,
            frame_id=str(frame_id),
        )

    def to_camera_info(self, *, stamp_ns: int, kit: Any = None) -> Any:
        """A ``sensor_msgs/CameraInfo`` of ``kit``'s flavour (default: rosbags).

        Model ``none`` is written as ``plumb_bob`` with five zero coefficients, the way ROS
        drivers publish an undistorted camera.
        """
        if kit is None:
            from ws3d_ros.msg.kit import rosbags_kit

            kit = rosbags_kit()
        model, D = self.distortion_model, self.D
        if model == "none":
            model, D = "plumb_bob", np.zeros(5)
        return kit.make(
            "sensor_msgs/msg/CameraInfo",
            header=kit.header(self.frame_id, stamp_ns),
            height=self.height,
            width=self.width,
            distortion_model=model,
            d=np.array(D, np.float64),
            k=self.K.reshape(-1).copy(),
            r=self.R.reshape(-1).copy(),
            p=self.P.reshape(-1).copy(),
        )

    # ------------------------------------------------------------------ properties

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def is_distorted(self) -> bool:
        return bool(np.any(self.D))

    def __repr__(self) -> str:
        return (
            f"CameraModel({self.width}x{self.height}, fx={self.fx:.2f}, fy={self.fy:.2f}, "
            f"cx={self.cx:.2f}, cy={self.cy:.2f}, {self.distortion_model} {self.D.tolist()}, "
            f"frame_id={self.frame_id!r})"
        )

    # ------------------------------------------------------------------ distortion maths

    def distort_normalized(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distorted normalised coordinates of undistorted ones (any float dtype, kept)."""
        if not self.is_distorted:
            return x, y
        d = [float(c) for c in self.D]
        r2 = x * x + y * y
        if self.distortion_model == "equidistant":
            k1, k2, k3, k4 = d
            r = np.sqrt(r2)
            theta = np.arctan(r)
            t2 = theta * theta
            theta_d = theta * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
            # theta_d / r -> 1 as r -> 0; r == 0 only at the optical axis.
            scale = np.divide(theta_d, r, out=np.ones_like(r), where=r > 0)
            return x * scale, y * scale
        k1, k2, p1, p2, k3 = d[0], d[1], d[2], d[3], d[4]
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        if self.distortion_model == "rational_polynomial":
            k4, k5, k6 = d[5], d[6], d[7]
            if k4 or k5 or k6:
                radial = radial / (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xd = x * radial
        yd = y * radial
        if p1 or p2:
            xy2 = 2.0 * x * y
            xd = xd + (p1 * xy2 + p2 * (r2 + 2.0 * x * x))
            yd = yd + (p1 * (r2 + 2.0 * y * y) + p2 * xy2)
        return xd, yd

    def _radial_and_derivative(self, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radial factor of plumb_bob/rational and its derivative with respect to r^2."""
        d = [float(c) for c in self.D]
        k1, k2, k3 = d[0], d[1], d[4]
        num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dnum = k1 + r2 * (2.0 * k2 + 3.0 * r2 * k3)
        if self.distortion_model == "rational_polynomial":
            k4, k5, k6 = d[5], d[6], d[7]
            den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
            dden = k4 + r2 * (2.0 * k5 + 3.0 * r2 * k6)
            return num / den, (dnum * den - num * dden) / (den * den)
        return num, dnum

    def undistort_normalized(self, xd: np.ndarray, yd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Invert :meth:`distort_normalized` (float64; NaN where there is no physical solution)."""
        xd = np.asarray(xd, np.float64)
        yd = np.asarray(yd, np.float64)
        if not self.is_distorted:
            return xd.copy(), yd.copy()
        if self.distortion_model == "equidistant":
            return self._undistort_equidistant(xd, yd)
        return self._undistort_polynomial(xd, yd)

    def _undistort_polynomial(
        self, xd: np.ndarray, yd: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        p1, p2 = float(self.D[2]), float(self.D[3])
        x, y = xd.copy(), yd.copy()
        active = np.flatnonzero(np.isfinite(xd) & np.isfinite(yd))
        for _ in range(_NEWTON_ITERS):
            if active.size == 0:
                break
            xa, ya = x[active], y[active]
            r2 = xa * xa + ya * ya
            rad, drad = self._radial_and_derivative(r2)
            fx_, fy_ = self.distort_normalized(xa, ya)
            ex, ey = fx_ - xd[active], fy_ - yd[active]
            # Jacobian of (x, y) -> (xd, yd).
            j11 = rad + 2.0 * xa * xa * drad + 2.0 * p1 * ya + 6.0 * p2 * xa
            j12 = 2.0 * xa * ya * drad + 2.0 * p1 * xa + 2.0 * p2 * ya
            j22 = rad + 2.0 * ya * ya * drad + 6.0 * p1 * ya + 2.0 * p2 * xa
            det = j11 * j22 - j12 * j12
            dx = (j22 * ex - j12 * ey) / det
            dy = (j11 * ey - j12 * ex) / det
            x[active] = xa - dx
            y[active] = ya - dy
            step = np.maximum(np.abs(dx), np.abs(dy))
            scale = np.maximum(1.0, np.maximum(np.abs(xa), np.abs(ya)))
            active = active[~(step <= _NEWTON_TOL * scale)]  # NaN steps stay active
        # Non-converged points, and solutions past the fold (Jacobian not positive definite,
        # i.e. a second pre-image on the far side of the polynomial), have no physical ray.
        bad = np.zeros(xd.shape, bool)
        bad[active] = True
        r2 = x * x + y * y
        rad, drad = self._radial_and_derivative(r2)
        j11 = rad + 2.0 * x * x * drad + 2.0 * p1 * y + 6.0 * p2 * x
        j12 = 2.0 * x * y * drad + 2.0 * p1 * x + 2.0 * p2 * y
        j22 = rad + 2.0 * y * y * drad + 6.0 * p1 * y + 2.0 * p2 * x
        bad |= ~((j11 > 0) & (j11 * j22 - j12 * j12 > 0))
        bad |= ~(np.sqrt(r2) <= self.fold_radius)
        x[bad] = np.nan
        y[bad] = np.nan
        return x, y

    def _undistort_equidistant(
        self, xd: np.ndarray, yd: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        k1, k2, k3, k4 = (float(c) for c in self.D)
        theta_d = np.sqrt(xd * xd + yd * yd)
        theta = theta_d.copy()
        active = np.flatnonzero(np.isfinite(theta_d))
        for _ in range(_NEWTON_ITERS):
            if active.size == 0:
                break
            t = theta[active]
            t2 = t * t
            g = t * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d[active]
            dg = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
            step = g / dg
            theta[active] = t - step
            active = active[~(np.abs(step) <= _NEWTON_TOL)]
        bad = np.zeros(xd.shape, bool)
        bad[active] = True
        bad |= ~((theta >= 0) & (theta < min(self._fold_theta, 0.5 * math.pi)))
        r = np.tan(np.where(bad, 0.0, theta))
        scale = np.divide(r, theta_d, out=np.ones_like(r), where=theta_d > 0)
        x, y = xd * scale, yd * scale
        x[bad] = np.nan
        y[bad] = np.nan
        return x, y

    @functools.cached_property
    def _fold_theta(self) -> float:
        """Equidistant: the first angle where theta_d(theta) stops increasing (inf if none)."""
        if self.distortion_model != "equidistant" or not self.is_distorted:
            return math.inf
        k1, k2, k3, k4 = (float(c) for c in self.D)
        t = np.linspace(0.0, 0.5 * math.pi, 20001)
        t2 = t * t
        dg = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
        falling = np.flatnonzero(dg <= 0)
        return float(t[falling[0]]) if falling.size else math.inf

    @functools.cached_property
    def fold_radius(self) -> float:
        """Undistorted normalised radius where the radial map stops increasing (inf if never).

        Past it the distortion polynomial folds back: points there would land on the image
        again (wrap-around), so nothing beyond it is ever treated as visible.
        """
        if not self.is_distorted:
            return math.inf
        if self.distortion_model == "equidistant":
            theta = self._fold_theta
            return math.tan(theta) if theta < 0.5 * math.pi else math.inf
        # d/dr [r * radial(r^2)] = radial + 2 r^2 radial'; searched out to ~89.4 degrees.
        r = np.linspace(0.0, 100.0, 200001)
        r2 = r * r
        rad, drad = self._radial_and_derivative(r2)
        slope = rad + 2.0 * r2 * drad
        falling = np.flatnonzero(~(slope > 0))
        return float(r[falling[0]]) if falling.size else math.inf

    # ------------------------------------------------------------------ pixels

    def project(self, pts_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(uv (N,2) float64 distorted pixels, depth (N,) = z)``; NaN pixels where ``z <= 0``."""
        pts = np.asarray(pts_cam, dtype=np.float64).reshape(-1, 3)
        z = pts[:, 2].copy()
        front = z > 0
        zs = np.where(front, z, np.nan)
        x, y = pts[:, 0] / zs, pts[:, 1] / zs
        return self.to_pixels(*self.distort_normalized(x, y)), z

    def to_pixels(self, xd: np.ndarray, yd: np.ndarray) -> np.ndarray:
        """Pixels of distorted normalised coordinates (float32 in, float32 out)."""
        K = self.K
        uv = np.empty((len(xd), 2), dtype=np.result_type(xd.dtype, np.float32))
        uv[:, 0] = float(K[0, 0]) * xd + float(K[0, 2])
        if K[0, 1]:
            uv[:, 0] += float(K[0, 1]) * yd
        uv[:, 1] = float(K[1, 1]) * yd + float(K[1, 2])
        return uv

    def unproject(self, uv: np.ndarray) -> np.ndarray:
        """``(N,3)`` rays ``(x, y, 1)`` (undistorted normalised) through distorted pixels.

        NaN where a pixel has no physical pre-image under the distortion model.
        """
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        K = self.K
        yd = (uv[:, 1] - K[1, 2]) / K[1, 1]
        xd = (uv[:, 0] - K[0, 2] - K[0, 1] * yd) / K[0, 0]
        x, y = self.undistort_normalized(xd, yd)
        return np.stack([x, y, np.ones_like(x)], axis=1)

    def pixel_rays(self, stride: int = 1) -> np.ndarray:
        """``(height // stride, width // stride, 3)`` rays through the centres of
        ``stride x stride`` pixel blocks (read-only, cached per stride)."""
        stride = int(stride)
        if stride < 1:
            raise ValueError(f"stride must be >= 1, found {stride}")
        cache: dict[int, np.ndarray] = self._rays  # type: ignore[attr-defined]
        rays = cache.get(stride)
        if rays is None:
            rows, cols = self.height // stride, self.width // stride
            u = np.arange(cols) * stride + 0.5 * stride
            v = np.arange(rows) * stride + 0.5 * stride
            uu, vv = np.meshgrid(u, v)
            rays = self.unproject(np.stack([uu.ravel(), vv.ravel()], axis=1))
            rays = _readonly(rays.reshape(rows, cols, 3))
            cache[stride] = rays
        return rays

    @functools.cached_property
    def fov_mask_bounds(self) -> float:
        """Largest undistorted normalised radius ``sqrt(x^2 + y^2)`` that can be in view.

        The largest radius of the image border's rays, plus :data:`FOV_MARGIN`, capped at
        :attr:`fold_radius`; ``inf`` for an undistorted camera (it needs no guard).
        """
        if not self.is_distorted:
            return math.inf
        w, h = float(self.width), float(self.height)
        nu, nv = self.width + 1, self.height + 1
        u = np.linspace(0.0, w, nu)
        v = np.linspace(0.0, h, nv)
        border = np.concatenate(
            [
                np.stack([u, np.zeros(nu)], 1),
                np.stack([u, np.full(nu, h)], 1),
                np.stack([np.zeros(nv), v], 1),
                np.stack([np.full(nv, w), v], 1),
            ]
        )
        rays = self.unproject(border)
        radius = np.hypot(rays[:, 0], rays[:, 1])
        radius = radius[np.isfinite(radius)]
        # Border pixels past the fold have no ray: the fold itself is then the limit.
        if radius.size < len(border):
            return float(self.fold_radius)
        return float(min(radius.max() * (1.0 + FOV_MARGIN), self.fold_radius))
