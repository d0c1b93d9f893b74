"""A minimal static transform tree (what tf2 does for ``/tf_static``), ROS-free.

Contract: feed it ``geometry_msgs/TransformStamped``-like objects (rclpy or
rosbags flavour: ``header.frame_id`` = parent, ``child_frame_id``,
``transform.translation.{x,y,z}``, ``transform.rotation.{x,y,z,w}``) or plain
:class:`Transform` edges; :meth:`TransformTree.lookup` returns
``T_target_from_source`` by chaining edges through the tree in either
direction. Frame ids are compared without a leading ``/`` (ROS 1 bags used
one). Unknown frames or disconnected trees raise
:class:`ws3d_ros.errors.CalibrationError` naming the frames known.

Only static transforms are handled: the perception pipeline needs the fixed
sensor-to-sensor calibration, not time-varying odometry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ws3d_ros.errors import CalibrationError
from ws3d_ros.geometry.extrinsics import Transform


def _norm(frame: str) -> str:
    return frame.lstrip("/")


class TransformTree:
    """Static frames connected by rigid transforms; lookups chain through parents."""

    def __init__(self) -> None:
        # child -> (parent, T_parent_from_child)
        self._parent: dict[str, tuple[str, Transform]] = {}

    def __len__(self) -> int:
        return len(self._parent)

    @property
    def frames(self) -> set[str]:
        names = set(self._parent)
        names.update(parent for parent, _ in self._parent.values())
        return names

    def set_transform(self, parent: str, child: str, T_parent_from_child: Transform) -> None:
        parent, child = _norm(parent), _norm(child)
        if parent == child:
            raise CalibrationError(f"transform from {child!r} to itself")
        self._parent[child] = (parent, T_parent_from_child)

    def add_message(self, tf_message: Any) -> int:
        """Add every transform of a ``tf2_msgs/TFMessage``; returns how many."""
        return self.add_stamped(getattr(tf_message, "transforms", ()))

    def add_stamped(self, transforms: Iterable[Any]) -> int:
        count = 0
        for ts in transforms:
            t, q = ts.transform.translation, ts.transform.rotation
            self.set_transform(
                ts.header.frame_id,
                ts.child_frame_id,
                Transform.from_xyz_quat((t.x, t.y, t.z), (q.x, q.y, q.z, q.w)),
            )
            count += 1
        return count

    def _chain_to_root(self, frame: str) -> list[tuple[str, Transform]]:
        """``[(ancestor, T_ancestor_from_frame), ...]`` from ``frame`` itself up to the root."""
        chain = [(frame, Transform.identity())]
        seen = {frame}
        acc = Transform.identity()
        while frame in self._parent:
            parent, T_parent_from_child = self._parent[frame]
            if parent in seen:
                raise CalibrationError(f"transform tree has a loop through {parent!r}")
            acc = T_parent_from_child @ acc
            chain.append((parent, acc))
            seen.add(parent)
            frame = parent
        return chain

    def lookup(self, target: str, source: str) -> Transform:
        """``T_target_from_source``: maps points in ``source`` into ``target``."""
        target, source = _norm(target), _norm(source)
        if target == source:
            return Transform.identity()
        known = self.frames
        for name in (target, source):
            if name not in known:
                raise CalibrationError(
                    f"frame {name!r} not in the transform tree (known: {sorted(known)})"
                )
        up_source = dict(self._chain_to_root(source))
        for ancestor, T_ancestor_from_target in self._chain_to_root(target):
            if ancestor in up_source:
                return T_ancestor_from_target.inverse() @ up_source[ancestor]
        raise CalibrationError(f"frames {source!r} and {target!r} are not connected")

    def can_lookup(self, target: str, source: str) -> bool:
        try:
            self.lookup(target, source)
        except CalibrationError:
            return False
        return True

    def edges(self) -> list[tuple[str, str]]:
        """``(parent, child)`` pairs, sorted by child."""
        return [(parent, child) for child, (parent, _) in sorted(self._parent.items())]
