"""Vocabulary: validation, lifetime-stable ids, label map."""

from __future__ import annotations

import json

import pytest

from ws3d_ros.runtime.vocabulary import UNKNOWN, Vocabulary, VocabularyError, color_for


def test_ids_are_stable_when_adding_and_removing() -> None:
    v = Vocabulary.create(["road", "car", "person"], ["car", "person"])
    ids = {n: v.id_of(n) for n in v.names}
    change = v.update(["car", "stroller", "road"], ["car", "stroller"])
    assert change.added == ("stroller",) and change.removed == ("person",)
    assert v.id_of("car") == ids["car"] and v.id_of("road") == ids["road"]
    assert v.id_of("stroller") == 3  # never reuses person's id
    v.update(["person", "road"])
    assert v.id_of("person") == ids["person"]  # re-added: same id
    assert list(v.active_ids) == [ids["person"], ids["road"]]
    assert UNKNOWN not in v.active_ids


@pytest.mark.parametrize(
    ("classes", "things", "templates", "reason"),
    [
        ([], [], None, "must not be empty"),
        (["car", "car"], [], None, "duplicates"),
        (["car", ""], [], None, "empty name"),
        ("car", [], None, "list of names"),
        (["car"], ["bus"], None, "not in classes"),
        (["car"], [], ["no placeholder"], "exactly one"),
        (["car"], [], [], "must not be empty"),
        (["car", 3], [], None, "strings"),
    ],
)
def test_bad_vocabulary_is_rejected_and_old_one_stays(classes, things, templates, reason) -> None:
    v = Vocabulary.create(["road", "car"], ["car"])
    before = (v.names, v.thing_names, v.templates)
    with pytest.raises(VocabularyError, match=reason):
        v.update(classes, things, templates)
    assert (v.names, v.thing_names, v.templates) == before


def test_label_map_json_and_colours() -> None:
    v = Vocabulary.create(["road", "forklift"], ["forklift"], ["a photo of a {}."])
    doc = json.loads(v.label_map_json())
    assert doc["unknown_id"] == UNKNOWN
    rows = {c["name"]: c for c in doc["classes"]}
    assert rows["forklift"]["thing"] is True and rows["road"]["thing"] is False
    assert rows["forklift"]["prompt"] == "a photo of a forklift."
    assert rows["road"]["color"] == [255, 0, 255]  # the simulator palette
    assert color_for("forklift") == color_for("forklift")
    assert color_for("forklift") != color_for("wheelbarrow")
    table = v.color_table()
    assert tuple(table[v.id_of("road")]) == (255, 0, 255)
    assert tuple(table[-1]) == (128, 128, 128)


def test_whitespace_in_names_is_normalised() -> None:
    v = Vocabulary.create(["  traffic   cone "])
    assert v.names == ("traffic cone",)
