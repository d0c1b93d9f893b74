"""``ws3d demo``: the whole loop on the embedded default, as `make demo` runs it.

simulate train + test bags -> `ws3d train` (demo_quick) -> `ws3d export` -> start the
perception node (a separate process, as `ros2 run` would) -> play the test bag through
it over DDS, one sweep at a time -> record panoptic/points -> mIoU / PQ against the
simulator's ground truth, in and out of the camera's field of view -> overlay.png and
bev.png -> change the vocabulary live through the parameter service and show the effect.

Honest note: CLIP is random-initialised here (no pretrained weights can be downloaded),
so the open-vocabulary part rests on the 3D training; with real CLIP weights
(`clip.pretrained: openai` in the model config) the same loop runs unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "training" / "configs" / "demo_quick.yaml"
EPILOG = """\
examples:
  make demo                                   # what the README's first command runs
  ws3d demo --out demo_out                    # the same, from an installed package
  ws3d demo --out demo_out --steps 100 --test-frames 4   # a shorter loop
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole loop: sim -> train -> export -> node over DDS -> scores + pictures",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--train-frames", type=int, default=40, help="sweeps per train bag")
    parser.add_argument("--test-frames", type=int, default=8, help="sweeps in the test bag")
    parser.add_argument("--steps", type=int, help="training steps (default: the config's)")
    parser.add_argument("--beams", type=int, choices=(32, 64, 128), default=64)
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG, help="training config")
    parser.add_argument("--fresh", action="store_true", help="delete --out first")
    parser.set_defaults(func=run)


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(t0: float, what: str = "") -> None:
    print(f"   done in {time.perf_counter() - t0:.1f} s {what}", flush=True)


def _simulate(out: Path, args: argparse.Namespace) -> tuple[list[Path], Path]:
    from ws3d_ros.sim.bagwrite import write_bag
    from ws3d_ros.sim.rig import SimConfig

    bags = []
    for seed in (1, 2):
        path = out / "bags" / f"train_seed{seed}"
        if not path.exists():
            write_bag(
                SimConfig(frames=args.train_frames, seed=seed, lidar_beams=args.beams), path, False
            )
        bags.append(path)
    test = out / "bags" / "test_seed7"
    if not test.exists():
        write_bag(SimConfig(frames=args.test_frames, seed=7, lidar_beams=args.beams), test, False)
    return bags, test


def _latest_checkpoint(run_dir: Path) -> Path:
    for name in ("model.pt", "final.pt", "last.pt", "checkpoint.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    found = sorted(run_dir.glob("*.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise Ws3dError(f"training wrote no checkpoint into {run_dir}")
    return found[-1]


class _Recorder:
    """Subscriptions of the demo's own node: outputs by stamp, label maps, diagnostics."""

    def __init__(self, node: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2
        from std_msgs.msg import String

        self.lock = threading.Lock()
        self.points: dict[int, Any] = {}
        self.overlays: dict[int, Any] = {}
        self.label_maps: list[dict] = []
        self.diagnostics: dict[str, str] = {}
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        node.create_subscription(PointCloud2, "/panoptic/points", self._on_points, reliable)
        node.create_subscription(Image, "/panoptic/overlay", self._on_overlay, reliable)
        node.create_subscription(String, "/panoptic/label_map", self._on_map, latched)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    @staticmethod
    def _stamp(msg: Any) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def _on_points(self, msg: Any) -> None:
        with self.lock:
            self.points[self._stamp(msg)] = msg

    def _on_overlay(self, msg: Any) -> None:
        with self.lock:
            self.overlays[self._stamp(msg)] = msg

    def _on_map(self, msg: Any) -> None:
        with self.lock:
            self.label_maps.append(json.loads(msg.data))

    def _on_diag(self, msg: Any) -> None:
        with self.lock:
            for status in msg.status:
                for kv in status.values:
                    self.diagnostics[kv.key] = kv.value


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise Ws3dError(f"the perception node exited (code {proc.returncode}) while {what}")
        time.sleep(0.05)
    raise Ws3dError(f"timed out after {timeout:.0f} s waiting for {what}")


def _node_command(model: Path, classes: list[str], things: list[str], T: np.ndarray) -> list[str]:
    params = {
        "model_path": str(model),
        "backend": "onnxruntime",
        "classes": classes,
        "thing_classes": things,
        "extrinsics.camera.matrix": [float(v) for v in T.reshape(-1)],
        "publish.overlay": True,
        "publish.instances": True,
        "sync.timeout": 2.0,
        # The player sends each sweep once and waits for its labels: no loss allowed.
        "qos.sensor_data": False,
    }
    cmd = [sys.executable, "-m", "ws3d_ros.cli.main", "node", "--ros-args"]
    for name, value in params.items():
        cmd += ["-p", f"{name}:={json.dumps(value)}"]
    cmd += [
        "-r", "points:=/lidar/points",
        "-r", "image:=/camera/image_raw",
        "-r", "camera_info:=/camera/camera_info",
    ]  # fmt: skip
    return cmd


def _play_lockstep(player: Any, rec: _Recorder, proc: subprocess.Popen, timeout: float) -> int:
    """Publish the bag; before sweep k+1 goes out, wait for sweep k's labels.

    A sweep's image is logged a few ms after its points, so waiting right after the
    points would starve the node of the image; waiting at the next sweep lets every
    message of sweep k arrive first. Nothing is dropped, so every sweep is scored.
    """
    sweeps = 0

    def wait_for(count: int) -> None:
        try:
            _wait(lambda: len(rec.points) >= count, timeout, f"labels of sweep {count}", proc)
        except Ws3dError as exc:
            with rec.lock:
                diag = {k: v for k, v in rec.diagnostics.items() if "drop" in k or "rate" in k}
            raise Ws3dError(f"{exc}; node diagnostics: {diag}") from None

    def on_message(topic: str, log_ns: int) -> None:
        nonlocal sweeps
        if topic == "/lidar/points":
            sweeps += 1
            if sweeps > 1:
                wait_for(sweeps - 1)

    player.play(on_message=on_message)
    wait_for(sweeps)
    return sweeps


def _prediction_frame(frame: Any, labels: np.ndarray, instances: np.ndarray) -> Any:
    shot = SimpleNamespace(
        camera=frame.views[0].camera, T_cam_from_lidar=frame.views[0].T_cam_from_lidar
    )
    return SimpleNamespace(
        cameras={frame.views[0].name: shot},
        images={frame.views[0].name: frame.views[0].image},
        xyz=np.stack([frame.points[a] for a in "xyz"], axis=1).astype(np.float64),
        points=frame.points,
        labels=labels,
        instances=instances,
    )


def _evaluate(
    test_bag: Path, rec: _Recorder, out: Path, sim_classes: Any
) -> tuple[dict[str, Any], list[Any]]:
    """Score the node's output against the test bag (ws3d_ros.eval: class lookup by name,
    the FOV of every camera, the majority baseline, as ``ws3d eval``)."""
    from ws3d_ros.data.frames import BagFrames
    from ws3d_ros.eval.report import write_report
    from ws3d_ros.eval.scoring import FrameScorer, class_lut, map_predicted
    from ws3d_ros.labels import class_colors
    from ws3d_ros.msg.pointcloud2 import cloud_to_array

    names = [c.name for c in sim_classes]
    scorer = FrameScorer(names, [c.thing for c in sim_classes])
    label_map = rec.label_maps[-1]
    lut = class_lut({int(c["id"]): str(c["name"]) for c in label_map["classes"]}, names)
    frames = []
    with BagFrames(test_bag) as bag:
        for frame in bag:
            msg = rec.points.get(frame.stamp_ns)
            if msg is None:
                continue
            pred = cloud_to_array(msg)
            labels = map_predicted(pred["label"], lut).astype(np.uint16)
            scorer.add(frame, labels, pred["instance"])
            frames.append((frame, labels, pred["instance"].copy(), pred["score"].copy()))
    result = scorer.result()
    baseline = scorer.baseline()
    result["majority_baseline"] = {"class": baseline["majority_class"], "miou": baseline["miou"]}
    write_report(result, out / "metrics", names, class_colors(sim_classes))
    return result, frames


def _pictures(frames: list[Any], out: Path, sim_classes: Any) -> None:
    import cv2

    from ws3d_ros.sim.preview import bev_picture, camera_picture

    frame, labels, instances, _ = frames[len(frames) // 2]
    view = _prediction_frame(frame, labels, instances)
    cv2.imwrite(
        str(out / "overlay.png"),
        camera_picture(view, sim_classes, title="predicted by ws3d_perception")[:, :, ::-1],
    )
    cv2.imwrite(str(out / "bev.png"), bev_picture(view, sim_classes)[:, :, ::-1])
    gt = _prediction_frame(frame, frame.labels, frame.instances)
    cv2.imwrite(
        str(out / "overlay_ground_truth.png"),
        camera_picture(gt, sim_classes, title="ground truth")[:, :, ::-1],
    )


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:5.1f}"


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.cli.main import main as ws3d
    from ws3d_ros.data.frames import BagFrames
    from ws3d_ros.msg.pointcloud2 import cloud_to_array
    from ws3d_ros.output_dirs import mark_output, replace_marked_dir
    from ws3d_ros.sim.classes import load_classes

    out: Path = args.out.resolve()
    if args.fresh:
        replace_marked_dir(out, "demo")  # only a folder an earlier `ws3d demo` made
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, "demo")
    t_all = time.perf_counter()
    print(
        "ws3d demo: simulated rig -> train -> export -> ROS 2 node over DDS -> scores\n"
        "note: CLIP weights are random here (nothing can be downloaded); see README for "
        "real weights."
    )

    t = _step("1/6 simulate two train bags and one held-out test bag")
    train_bags, test_bag = _simulate(out, args)
    sim_classes = load_classes(test_bag / "classes.yaml")
    _done(t, f"({', '.join(p.name for p in [*train_bags, test_bag])})")

    t = _step(f"2/6 train ({args.config.name})")
    run_dir = out / "run"
    ckpts = list(run_dir.glob("*.pt")) if run_dir.exists() else []
    if not ckpts:
        argv = ["train", "--config", str(args.config), "--bags", *map(str, train_bags)]
        argv += ["--out", str(run_dir)]
        if run_dir.exists():  # an interrupted earlier demo run: start it over
            argv += ["--force"]
        if args.steps:
            argv += ["--steps", str(args.steps)]
        if ws3d(argv) != 0:
            raise Ws3dError("training failed")
    ckpt = _latest_checkpoint(run_dir)
    _done(t, f"-> {ckpt.relative_to(out)}")

    t = _step("3/6 export (ONNX graphs + torch vs ONNX Runtime parity)")
    model_dir = run_dir / "model"
    if not (model_dir / "model.json").is_file():
        if ws3d(["export", "--checkpoint", str(ckpt), "--out", str(model_dir)]) != 0:
            raise Ws3dError("export failed")
    parity = json.loads((model_dir / "parity.json").read_text())
    _done(t)

    t = _step("4/6 start the perception node and play the test bag through it over DDS")
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    from ws3d_ros.ros.bag_player import BagPlayer

    meta_classes = [c.name for c in sim_classes]
    things = [c.name for c in sim_classes if c.thing]
    with BagFrames(test_bag) as bag:
        first = next(iter(bag))
    T = first.views[0].T_cam_from_lidar.matrix
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 60))
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    node_log = (out / "node.log").open("w")
    proc = subprocess.Popen(
        _node_command(model_dir, meta_classes, things, T),
        env=env,
        stdout=node_log,
        stderr=subprocess.STDOUT,
    )
    rclpy.init()
    demo = rclpy.create_node("ws3d_demo")
    rec = _Recorder(demo)
    inputs = ("/lidar/points", "/camera/image_raw", "/camera/camera_info")
    player = BagPlayer(test_bag, topics=inputs, node_name="ws3d_demo_player")
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(demo)
    executor.add_node(player)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    summary: dict[str, Any] = {}
    try:
        _wait(lambda: bool(rec.label_maps), 120, "the node's label map", proc)
        _wait(
            lambda: all(player.subscribers(t) > 0 for t in inputs),
            60,
            "the node to subscribe to the bag's topics",
            proc,
        )
        t_play = time.perf_counter()
        sweeps = _play_lockstep(player, rec, proc, timeout=120)
        play_s = time.perf_counter() - t_play
        _done(t, f"({sweeps} sweeps labelled, {play_s / max(sweeps, 1):.2f} s per sweep "
                 "end to end, lock-step)")  # fmt: skip

        t = _step("5/6 score against the simulator's ground truth + pictures")
        result, frames = _evaluate(test_bag, rec, out, sim_classes)
        _pictures(frames, out, sim_classes)
        _done(t, "-> metrics/, overlay.png, bev.png")

        t = _step("6/6 change the vocabulary live: drop 'traffic cone', add 'stroller'")
        client = AsyncParameterClient(demo, "/ws3d_perception")
        _wait(lambda: client.services_are_ready(), 30, "the parameter service")
        new_classes = [c for c in meta_classes if c != "traffic cone"] + ["stroller"]
        maps_before = len(rec.label_maps)
        future = client.set_parameters([Parameter("classes", value=new_classes)])
        _wait(future.done, 30, "the parameter service to answer", proc)
        answer = future.result().results[0]
        if not answer.successful:
            raise Ws3dError(f"the node refused the new classes: {answer.reason}")
        _wait(lambda: len(rec.label_maps) > maps_before, 60, "the new label map", proc)
        old_map = {c["name"]: c["id"] for c in rec.label_maps[maps_before - 1]["classes"]}
        new_map = {c["name"]: c["id"] for c in rec.label_maps[-1]["classes"]}
        rec.points.clear()
        player2 = BagPlayer(test_bag, topics=inputs, node_name="ws3d_demo_player2")
        executor.add_node(player2)
        _wait(
            lambda: all(player2.subscribers(t) > 0 for t in inputs),
            60,
            "the node to subscribe to the bag's topics",
            proc,
        )
        _play_lockstep(player2, rec, proc, timeout=120)
        cone = old_map["traffic cone"]
        cone_sim = [c.name for c in sim_classes].index("traffic cone")
        before = sum(int((f[1] == cone_sim).sum()) for f in frames)
        after_cone = sum(
            int((cloud_to_array(msg)["label"] == cone).sum()) for msg in rec.points.values()
        )
        summary["vocabulary_change"] = {
            "removed": "traffic cone",
            "added": "stroller",
            "stroller_id": new_map["stroller"],
            "ids_unchanged": all(new_map[n] == old_map[n] for n in new_map if n in old_map),
            "traffic_cone_points_before": before,
            "traffic_cone_points_after": after_cone,
        }
        _done(t)
        summary["diagnostics"] = {
            k: v for k, v in rec.diagnostics.items() if "latency" in k or k.startswith("rate")
        }
    finally:
        executor.shutdown()
        demo.destroy_node()
        player.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        node_log.close()

    a, i, o = result["all"], result["in_fov"], result["out_fov"]
    summary.update(
        {
            "frames": a["frames"],
            "miou": {"all": a["miou"], "in_fov": i["miou"], "out_fov": o["miou"]},
            "pq": {"all": a["pq"], "in_fov": i["pq"], "out_fov": o["pq"]},
            "majority_baseline": result["majority_baseline"],
            "parity": parity,
            "seconds": round(time.perf_counter() - t_all, 1),
        }
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    vc = summary["vocabulary_change"]
    print(
        f"""
============================== ws3d demo summary ==============================
test bag: {a["frames"]} sweeps, {a["points"]["evaluated"]:,} labelled points
                      mIoU    PQ     (%)
  all points         {_pct(a["miou"])}  {_pct(a["pq"])}
  in camera FOV      {_pct(i["miou"])}  {_pct(i["pq"])}
  out of camera FOV  {_pct(o["miou"])}  {_pct(o["pq"])}
  majority-class baseline mIoU {_pct(result["majority_baseline"]["miou"])} \
('{result["majority_baseline"]["class"]}' everywhere)
export parity torch vs ONNX Runtime: max |diff| {parity["max_abs_diff_embedding"]:.1e}, \
labels agree {parity["label_agreement_pct"]:.2f} %
live vocabulary change (ros2 param set classes ...): 'traffic cone' removed -> its points \
{vc["traffic_cone_points_before"]} -> {vc["traffic_cone_points_after"]}; 'stroller' added \
with id {vc["stroller_id"]}; other ids unchanged: {vc["ids_unchanged"]}
outputs: {out}/overlay.png, bev.png, metrics/metrics.md, summary.json
total {summary["seconds"]:.0f} s
==============================================================================="""
    )
    return 0
