"""Tests of ws3d_ros.sim.classes: preset lists and the classes.yaml round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ws3d_ros.errors import Ws3dError
from ws3d_ros.sim.classes import (
    INDOOR_CLASSES,
    PRESET_CLASSES,
    STREET_CLASSES,
    class_colors,
    class_id,
    load_classes,
    write_classes,
)


@pytest.mark.parametrize("classes", list(PRESET_CLASSES.values()))
def test_preset_lists_are_dense_and_named(classes) -> None:
    assert [c.id for c in classes] == list(range(len(classes)))
    names = [c.name for c in classes]
    assert len(set(names)) == len(names)
    assert all(n and n == n.strip() and n.replace(" ", "").isalpha() for n in names)
    assert any(c.thing for c in classes) and any(not c.thing for c in classes)
    assert class_colors(classes).shape == (len(classes), 3)


def test_street_and_indoor_vocabularies() -> None:
    street = {c.name: c.thing for c in STREET_CLASSES}
    for stuff in (
        "road",
        "sidewalk",
        "terrain",
        "building",
        "vegetation",
        "pole",
        "traffic sign",
        "fence",
    ):
        assert street[stuff] is False
    for thing in ("car", "truck", "pedestrian", "cyclist", "traffic cone"):
        assert street[thing] is True
    indoor = {c.name: c.thing for c in INDOOR_CLASSES}
    assert indoor["floor"] is False and indoor["wall"] is False
    assert indoor["chair"] is True and indoor["person"] is True
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
