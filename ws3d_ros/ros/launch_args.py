"""What ``perception.launch.py``'s arguments mean, as plain Python (no ``launch`` import).

The launch file calls :func:`node_setup` from an ``OpaqueFunction`` with the argument
values as strings; tests call it directly. Contract — parameter precedence, lowest first:

1. the node's declared defaults (the same values as ``config/perception.yaml``);
2. ``params_file`` — the user's parameter file, when given (non-empty);
3. ``vocabulary`` — when given: a shipped vocabulary by name (``driving``, ``indoor``:
   ``config/vocabularies/<name>.yaml``) or a parameter file path; anything else is an
   error naming the shipped vocabularies;
4. the single-value arguments ``model_path``, ``backend``, ``mode``, ``device``,
   ``image_transport`` and ``use_sim_time`` — each only when given.

So a value in the user's file is never replaced by a launch default. ``managed`` (true |
false) starts the lifecycle flavour (``--managed``), ``autostart`` configures and
activates it at start. A bad value raises :class:`LaunchArgumentError` whose text is what
``ros2 launch`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ws3d_ros.errors import Ws3dError

__all__ = [
    "ARGUMENTS",
    "LaunchArgumentError",
    "NodeSetup",
    "node_setup",
    "parse_bool",
    "resolve_vocabulary",
    "shipped_vocabularies",
]

#: Launch argument -> (default, description). An empty default means "not given".
ARGUMENTS: dict[str, tuple[str, str]] = {
    "params_file": ("", "your parameter file (keys /**/ws3d_perception); empty: defaults"),
    "vocabulary": (
        "",
        "a shipped vocabulary by name (driving, indoor) or a parameter file with classes / "
        "thing_classes / prompt_templates; applied over params_file; empty: not applied",
    ),
    "model_path": ("", "ws3d export directory (or a checkpoint for backend torch)"),
    "backend": ("", "onnxruntime | tensorrt | torch (empty: params_file or default)"),
    "mode": ("", "fusion | lidar_only | zero_shot (empty: params_file or default)"),
    "device": ("", "cpu | cuda | cuda:N (empty: params_file or default)"),
    "image_transport": ("", "raw | compressed: how the single camera's images arrive"),
    "use_sim_time": ("", "true: use /clock (bag playback); empty: params_file or false"),
    "namespace": ("", "node namespace"),
    "managed": ("false", "true: a lifecycle node (configure loads, activate starts)"),
    "autostart": ("false", "with managed:=true: configure and activate at start"),
    "points": ("points", "LiDAR topic (PointCloud2)"),
    "image": ("image", "camera image topic (raw); compressed: this topic + /compressed"),
    "camera_info": ("camera_info", "camera calibration topic"),
}
_SINGLE_VALUES = ("model_path", "backend", "mode", "device")


class LaunchArgumentError(Ws3dError, ValueError):
    """A launch argument cannot be used; the text says which and why."""


@dataclass
class NodeSetup:
    """What the launch file passes to ``launch_ros.actions.Node``."""

    namespace: str
    parameters: list[str | dict[str, Any]]  # files, then one dict of overrides
    arguments: list[str] = field(default_factory=list)
    remappings: list[tuple[str, str]] = field(default_factory=list)


def parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise LaunchArgumentError(f"{name}:={text!r} must be true or false")


def shipped_vocabularies(share: Path) -> list[str]:
    """Names of the vocabularies installed under ``share/config/vocabularies``."""
    return sorted(p.stem for p in (share / "config" / "vocabularies").glob("*.yaml"))


def resolve_vocabulary(value: str, share: Path) -> Path:
    """``driving`` -> the shipped file; a path -> itself. Raises :class:`LaunchArgumentError`."""
    shipped = share / "config" / "vocabularies" / f"{value}.yaml"
    if "/" not in value and not value.endswith(".yaml") and shipped.is_file():
        return shipped
    path = Path(value).expanduser()
    if path.is_file():
        return path
    names = ", ".join(shipped_vocabularies(share)) or "(none installed)"
    raise LaunchArgumentError(
        f"vocabulary:={value!r} is neither a shipped vocabulary ({names}) nor a file"
    )


def node_setup(values: Mapping[str, str], share: Path) -> NodeSetup:
    """The node's parameters, arguments and remaps for these launch argument values
    (missing names take :data:`ARGUMENTS` defaults). See the module docstring."""
    v = {name: str(values.get(name, default)).strip() for name, (default, _) in ARGUMENTS.items()}
    files: list[str | dict[str, Any]] = []
    if v["params_file"]:
        path = Path(v["params_file"]).expanduser()
        if not path.is_file():
            raise LaunchArgumentError(f"params_file:={v['params_file']!r} is not a file")
        files.append(str(path))
    if v["vocabulary"]:
        files.append(str(resolve_vocabulary(v["vocabulary"], share)))
    overrides: dict[str, Any] = {name: v[name] for name in _SINGLE_VALUES if v[name]}
    if v["model_path"]:
        overrides["model_path"] = str(Path(v["model_path"]).expanduser().resolve())
    if v["image_transport"]:
        if v["image_transport"] not in ("raw", "compressed"):
            raise LaunchArgumentError(
                f"image_transport:={v['image_transport']!r} must be raw or compressed"
            )
        overrides["image_transport.camera"] = v["image_transport"]
    if v["use_sim_time"]:
        overrides["use_sim_time"] = parse_bool("use_sim_time", v["use_sim_time"])
    managed = parse_bool("managed", v["managed"])
    autostart = parse_bool("autostart", v["autostart"])
    if autostart and not managed:
        raise LaunchArgumentError("autostart:=true needs managed:=true")
    arguments = ["--managed"] * managed + ["--autostart"] * autostart
    remappings = [
        ("points", v["points"]),
        ("image", v["image"]),
        ("camera_info", v["camera_info"]),
    ]
    if v["image_transport"] == "compressed":
        remappings.append(("image/compressed", f"{v['image'].rstrip('/')}/compressed"))
    return NodeSetup(
        namespace=v["namespace"],
        parameters=[*files, overrides] if overrides else files,
        arguments=arguments,
        remappings=remappings,
    )
