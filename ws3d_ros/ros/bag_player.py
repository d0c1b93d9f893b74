"""Publish a rosbag2 over rclpy with its original timing (``ws3d play``).

For machines without ``ros2 bag play``. Contract:
- Messages are published as their recorded CDR bytes (``publish_raw``): no
  decode/re-encode, so any message type the local ROS install knows plays.
- Timing follows the bag's log stamps scaled by ``1/rate``; ``loop`` replays
  forever (header stamps then go back in time, as with ``ros2 bag play -l``).
- A topic whose message type the local ROS install lacks is skipped with a
  warning (an error when it was asked for with ``topics``).
- Latched topics in the bag (transient-local, e.g. ``/tf_static``) get a
  transient-local publisher so late subscribers still receive them.
- ``clock=True`` publishes ``/clock`` (rosgraph_msgs/Clock) with the bag time
  at >= ``clock_hz`` for nodes running with ``use_sim_time``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from ws3d_ros.data.bag import BagReader
from ws3d_ros.errors import BagError, Ws3dError
from ws3d_ros.msg.kit import rclpy_kit
from ws3d_ros.ros.executable import ShutdownSignals, parse_args, startup_error


def wall_delay(log_ns: int, first_log_ns: int, rate: float) -> float:
    """Seconds after playback start at which a message logged at ``log_ns`` is due."""
    return max(0.0, (log_ns - first_log_ns) / 1e9 / rate)


class BagPlayer(Node):
    """A node that owns one publisher per played topic."""

    def __init__(
        self,
        bag: str | Path,
        *,
        rate: float = 1.0,
        loop: bool = False,
        clock: bool = False,
        clock_hz: float = 100.0,
        topics: Sequence[str] | None = None,
        remap: dict[str, str] | None = None,
        node_name: str = "ws3d_bag_player",
    ) -> None:
        super().__init__(node_name)
        if rate <= 0:
            raise Ws3dError(f"--rate must be > 0, got {rate}")
        self.bag_path = Path(bag)
        self.rate = rate
        self.loop = loop
        self.clock_hz = clock_hz
        self.remap = dict(remap or {})
        self.published = 0
        kit = rclpy_kit()
        with BagReader(self.bag_path) as reader:
            infos = reader.topics
        wanted = set(topics) if topics else set(infos)
        unknown = wanted - set(infos)
        if unknown:
            raise BagError(f"topics not in {self.bag_path}: {sorted(unknown)}")
        # Not ``_publishers``: rclpy.Node keeps its own list under that name.
        self._topic_pubs: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}  # topic -> why it is not played
        for name in sorted(wanted):
            info = infos[name]
            try:
                msg_cls = kit.cls(info.msgtype)
            except Ws3dError as exc:
                if topics:  # asked for by name: the user must know it cannot play
                    raise
                # E.g. tf2_msgs with only the PyPI ROS wheels: play the rest.
                self.skipped[name] = str(exc)
                self.get_logger().warning(f"not playing {name}: {exc}")
                continue
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=1 if info.latched else 100,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=(
                    DurabilityPolicy.TRANSIENT_LOCAL if info.latched else DurabilityPolicy.VOLATILE
                ),
            )
            self._topic_pubs[name] = self.create_publisher(msg_cls, self.remap.get(name, name), qos)
        if not self._topic_pubs:
            raise BagError(f"no topic of {self.bag_path} can be played: {self.skipped}")
        self.topics = sorted(self._topic_pubs)
        self._clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self._clock_cls = Clock
            self._clock_pub = self.create_publisher(Clock, "/clock", 10)

    def subscribers(self, topic: str) -> int:
        """Matched subscriptions of the publisher of ``topic`` (discovery check)."""
        return self._topic_pubs[topic].get_subscription_count()

    def _publish_clock(self, bag_ns: int) -> None:
        if self._clock_pub is None:
            return
        msg = self._clock_cls()
        msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
        self._clock_pub.publish(msg)

    def _sleep_until(self, due: float, start: float, bag_start_ns: int) -> None:
        """Sleep until ``due`` (monotonic), ticking /clock on the way."""
        tick = 1.0 / self.clock_hz
        while True:
            now = time.monotonic()
            if now >= due:
                return
            if self._clock_pub is not None:
                self._publish_clock(bag_start_ns + int((now - start) * self.rate * 1e9))
            time.sleep(min(tick, due - now))

    def play(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        on_message: Callable[[str, int], None] | None = None,
    ) -> int:
        """Play once (or forever with ``loop``); returns messages published."""
        while True:
            with BagReader(self.bag_path) as reader:
                start = time.monotonic()
                first: int | None = None
                for topic, _msgtype, log_ns, raw in reader.raw_messages(self.topics):
                    if should_stop() or not rclpy.ok():
                        return self.published
                    if first is None:
                        first = log_ns
                    self._sleep_until(start + wall_delay(log_ns, first, self.rate), start, first)
                    self._publish_clock(log_ns)
                    self._topic_pubs[topic].publish(bytes(raw))
                    self.published += 1
                    if on_message is not None:
                        on_message(topic, log_ns)
            if not self.loop or should_stop():
                return self.published


def parse_bool(text: str) -> bool:
    """``--loop`` alone means true; launch files pass ``--loop true|false``."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory (MCAP or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    parser.add_argument(
        "--loop", nargs="?", const=True, default=False, type=parse_bool, help="replay forever"
    )
    parser.add_argument(
        "--clock",
        nargs="?",
        const=True,
        default=False,
        type=parse_bool,
        help="publish /clock from bag time (for use_sim_time)",
    )
    parser.add_argument("--topics", nargs="+", help="play only these topics")
    parser.add_argument(
        "--remap",
        nargs="+",
        default=[],
        metavar="FROM:=TO",
        help="rename topics on output, e.g. /lidar/points:=/points",
    )


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    remap = {}
    for item in items:
        if ":=" not in item:
            raise Ws3dError(f"bad remap {item!r}: expected FROM:=TO")
        src, dst = item.split(":=", 1)
        remap[src] = dst
    return remap


def run_player(args: argparse.Namespace, ros_args: Sequence[str] = ()) -> int:
    """Play the bag of ``args`` until it ends (or forever with ``--loop``); SIGINT or
    SIGTERM stops it cleanly (exit 0), a second one at once (:mod:`ws3d_ros.ros.executable`)."""
    signals = ShutdownSignals("bag_player").install()
    try:
        rclpy.init(args=["bag_player", *ros_args], signal_handler_options=SignalHandlerOptions.NO)
    except Exception as exc:
        signals.restore()
        return startup_error("bag_player", exc)
    player = None
    try:
        player = BagPlayer(
            args.bag,
            rate=args.rate,
            loop=args.loop,
            clock=args.clock,
            topics=args.topics,
            remap=parse_remaps(args.remap),
        )
        player.get_logger().info(
            f"playing {args.bag} ({len(player.topics)} topics) at {args.rate}x"
            + (" in a loop" if args.loop else "")
        )
        count = player.play(should_stop=signals.requested.is_set)
        player.get_logger().info(f"published {count} messages")
    finally:
        if player is not None:
            player.destroy_node()
        rclpy.try_shutdown()
        signals.restore()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Options of the ``bag_player`` executable."""
    parser = argparse.ArgumentParser(
        prog="bag_player",
        description=__doc__.splitlines()[0],
        epilog="examples:\n  ros2 run ws3d_ros bag_player /data/street --rate 0.5 --loop --clock\n"
        "  ros2 run ws3d_ros bag_player /data/street --remap /lidar/points:=/points",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bag_player`` executable (``ros2 run ws3d_ros bag_player BAG``)."""
    args, full = parse_args(build_parser(), argv)
    ros_args = full[full.index("--ros-args") :] if "--ros-args" in full else []
    try:
        return run_player(args, ros_args)
    except Ws3dError as exc:
        print(f"bag_player: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
