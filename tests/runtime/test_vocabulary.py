"""Vocabulary: validation, lifetime-stable ids, label map."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from ws3d_ros.runtime.vocabulary import (
    MAX_ACTIVE_CLASSES,
    MAX_NAME_LENGTH,
    MAX_TEMPLATES,
    UNKNOWN,
    Vocabulary,
    VocabularyError,
    color_for,
    validate_vocabulary,
)


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


@pytest.mark.parametrize(
    ("classes", "things", "templates", "reason"),
    [
        ([f"c{i}" for i in range(MAX_ACTIVE_CLASSES + 1)], [], None, "more than 1024 names"),
        (["car"], [f"c{i}" for i in range(MAX_ACTIVE_CLASSES + 1)], None, "more than 1024"),
        (["x" * (MAX_NAME_LENGTH + 1)], [], None, "longer than 80 characters"),
        (["car\x1b[2J"], [], None, "control character U+001B"),
        (["car\nERROR fake log line"], [], None, "control character U+000A"),
        (["car\u202eevil"], [], None, "control character U+202E"),  # bidi override
        (["car"], ["car\x00"], None, "control character U+0000"),
        (["car"], [], ["a {}\x07"], "control character U+0007"),
        (["car"], [], ["a {}"] * (MAX_TEMPLATES + 1), "more than 32 templates"),
        (["car"], [], ["{}" + "x" * 200], "longer than 200 characters"),
        ("car", [], None, "must be a list"),
        (5, [], None, "must be a list"),
    ],
)
def test_validation_caps_and_control_characters(classes, things, templates, reason) -> None:
    with pytest.raises(VocabularyError, match=re.escape(reason)) as err:
        validate_vocabulary(classes, things, templates)
    msg = str(err.value)
    assert len(msg) < 300  # a one-line reason, not the 1025 names
    assert not any(unicodedata.category(c).startswith("C") for c in msg)  # safe to log
    v = Vocabulary.create(["road"])
    with pytest.raises(VocabularyError, match=re.escape(reason)):  # the worker refuses the same
        v.update(classes, things, templates)
    assert v.names == ("road",)


def test_validation_accepts_the_limits_and_normalises() -> None:
    names = [f"class {i}" for i in range(MAX_ACTIVE_CLASSES)]
    got, things, templates = validate_vocabulary(names, ["class 3"], None)
    assert got == names and things == ["class 3"] and templates is None
    got, _, templates = validate_vocabulary(["  traffic   cone ", "é" * MAX_NAME_LENGTH],
                                            [], ["a {}"] * MAX_TEMPLATES)  # fmt: skip
    assert got == ["traffic cone", "é" * MAX_NAME_LENGTH] and len(templates) == MAX_TEMPLATES
