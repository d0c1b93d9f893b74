"""Tests of ws3d_ros.labels: preset lists, the vocabulary files, the classes.yaml round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import (
    DRIVING_CLASSES,
    DRIVING_THINGS,
    PRESET_CLASSES,
    STREET_CLASSES,
    UNKNOWN_LABEL,
    VOCABULARY_PRESETS,
    class_colors,
    class_id,
    load_classes,
    write_classes,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("classes", list(PRESET_CLASSES.values()))
def test_preset_lists_are_dense_and_named(classes) -> None:
    assert [c.id for c in classes] == list(range(len(classes)))
    names = [c.name for c in classes]
    assert len(set(names)) == len(names)
    assert all(n and n == n.strip() and n.replace(" ", "").isalpha() for n in names)
    assert any(c.thing for c in classes) and any(not c.thing for c in classes)
    assert class_colors(classes).shape == (len(classes), 3)


@pytest.mark.parametrize("name", sorted(VOCABULARY_PRESETS))
def test_vocabulary_files_are_the_presets(name: str) -> None:
    """config/vocabularies/<name>.yaml (read by ros2 launch, so not generated) lists the
    preset's classes and things in order."""
    doc = yaml.safe_load((ROOT / f"config/vocabularies/{name}.yaml").read_text())
    (values,) = (v["ros__parameters"] for v in doc.values())
    preset = VOCABULARY_PRESETS[name]
    assert values["classes"] == [c.name for c in preset]
    assert values["thing_classes"] == [c.name for c in preset if c.thing]


def test_driving_default_and_unknown_label() -> None:
    assert list(DRIVING_CLASSES) == [c.name for c in STREET_CLASSES]
    assert list(DRIVING_THINGS) == [c.name for c in STREET_CLASSES if c.thing]
    assert UNKNOWN_LABEL == np.iinfo(np.uint16).max
    assert all(len(p) < UNKNOWN_LABEL for p in PRESET_CLASSES.values())


def test_the_simulator_and_the_node_read_the_presets() -> None:
    from ws3d_ros.ros import params
    from ws3d_ros.sim import classes as sim_classes

    assert sim_classes.STREET_CLASSES is STREET_CLASSES
    assert sim_classes.UNKNOWN_LABEL == UNKNOWN_LABEL
    assert params.spec_for("classes").default == list(DRIVING_CLASSES)
    assert params.spec_for("thing_classes").default == list(DRIVING_THINGS)


def test_class_lookup() -> None:
    assert class_id(STREET_CLASSES, "car") == 8
    with pytest.raises(Ws3dError, match="no class 'boat'"):
        class_id(STREET_CLASSES, "boat")


def test_yaml_round_trip_and_format(tmp_path: Path) -> None:
    path = write_classes(tmp_path / "classes.yaml", STREET_CLASSES)
    data = yaml.safe_load(path.read_text())
    assert data["classes"][0] == {"id": 0, "name": "road", "thing": False, "color": [255, 0, 255]}
    assert data["classes"][6]["name"] == "traffic sign"
    assert load_classes(path) == STREET_CLASSES


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: []\n")
    with pytest.raises(Ws3dError, match="non-empty 'classes'"):
        load_classes(bad)
    bad.write_text("classes:\n  - {id: 0, thing: false}\n")
    with pytest.raises(Ws3dError, match="needs id, name, thing"):
        load_classes(bad)
    with pytest.raises(Ws3dError, match="cannot read"):
        load_classes(tmp_path / "missing.yaml")
