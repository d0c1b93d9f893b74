"""The open vocabulary: class names the user asks for, with ids that never move.

Contract:
- :func:`validate_vocabulary` is the one check of a requested vocabulary, used by
  :meth:`Vocabulary.update` (so the pipeline's worker) and by the node's parameter
  callback alike, so a parameter change that is accepted is also applied. It refuses,
  with :class:`VocabularyError` saying why: a non-list, a non-string or empty name,
  duplicates, more than :data:`MAX_ACTIVE_CLASSES` classes, a name longer than
  :data:`MAX_NAME_LENGTH` characters, any control/format character (ESC, newline,
  bidi overrides: Unicode category C) in a name or template, ``thing_classes`` not a
  subset of ``classes``, a template without exactly one ``{}``, more than
  :data:`MAX_TEMPLATES` templates or one longer than :data:`MAX_TEMPLATE_LENGTH`.
  Names are whitespace-normalised (runs of spaces become one).
- Bounded cost: a change encodes at most ``MAX_ACTIVE_CLASSES x MAX_TEMPLATES`` prompts
  of bounded length (the text encoder runs one tower call per *new* name; names seen
  before come from its cache), so no parameter value can stall inference for long.
- :meth:`Vocabulary.update` takes the requested class names, which of them are things
  (have instances) and the prompt templates, validates them as above and raises
  :class:`VocabularyError` with the reason otherwise, leaving the vocabulary unchanged.
- A name keeps its class id for the lifetime of the object: adding a class never
  renumbers the others, and a removed class keeps its id reserved, so re-adding it
  gives back the same id (the node's ``panoptic/label_map`` contract).
- ``active`` lists the current classes in the order of the logits the model computes:
  ``label = active_ids[argmax]``. Ids fit uint16 and never reach 65535 (``UNKNOWN``).
- Colours are stable per name: the SemanticKITTI-like palette of the presets
  (:mod:`ws3d_ros.labels`) where the name is known, otherwise a colour derived from a
  hash of the name.
- :meth:`label_map` is the JSON document published on ``panoptic/label_map``.

No torch, no rclpy: node, CLI and training share this module.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import UNKNOWN_LABEL, preset_palette

UNKNOWN = UNKNOWN_LABEL
MAX_CLASSES = UNKNOWN_LABEL  # ids 0..65534 over a vocabulary's life; 65535 is "unknown"
MAX_ACTIVE_CLASSES = 1024  # classes in use at once (bounds the cost of one change)
MAX_NAME_LENGTH = 80  # characters of a class name (CLIP reads 77 tokens per prompt)
MAX_TEMPLATES = 32
MAX_TEMPLATE_LENGTH = 200

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a rendering of a {}.",
    "{} in a street scene.",
)


class VocabularyError(Ws3dError, ValueError):
    """A requested vocabulary is invalid; the message says why."""


@dataclass(frozen=True)
class ClassEntry:
    """One class of the vocabulary."""

    id: int
    name: str
    thing: bool
    color: tuple[int, int, int]
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class VocabularyChange:
    """What an :meth:`Vocabulary.update` did."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed_templates: bool

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed_templates)


def color_for(name: str) -> tuple[int, int, int]:
    """Stable display colour of a class name."""
    known = preset_palette().get(name)
    if known is not None:
        return known
    h = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "little")
    hue = (h % 360) / 360.0
    sat = 0.55 + ((h >> 9) % 40) / 100.0
    val = 0.75 + ((h >> 17) % 25) / 100.0
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (round(r * 255), round(g * 255), round(b * 255))


def _shown(text: str, limit: int = 40) -> str:
    """``text`` safe for a log line: repr (escapes control characters), shortened."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_characters(text: str, what: str) -> None:
    for ch in text:
        if unicodedata.category(ch).startswith("C"):
            raise VocabularyError(
                f"{what} {_shown(text)} holds the control character U+{ord(ch):04X}"
            )


def _clean_names(values: Iterable[object], what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise VocabularyError(f"{what} must be a list of names, found {_shown(str(values))}")
    names = []
    for k, v in enumerate(values):
        if k >= MAX_ACTIVE_CLASSES:
            raise VocabularyError(f"{what} holds more than {MAX_ACTIVE_CLASSES} names")
        if not isinstance(v, str):
            raise VocabularyError(f"{what} must hold strings, found {_shown(repr(v))}")
        _check_characters(v, f"{what}: name")
        name = " ".join(v.split())
        if not name:
            raise VocabularyError(f"{what} holds an empty name")
        if len(name) > MAX_NAME_LENGTH:
            raise VocabularyError(
                f"{what}: name {_shown(name)} is longer than {MAX_NAME_LENGTH} characters"
            )
        names.append(name)
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})
    if dupes:
        raise VocabularyError(f"{what} holds duplicates: {dupes}")
    return names


def validate_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """Checked prompt templates (each has exactly one ``{}``)."""
    if isinstance(templates, str):
        templates = [templates]
    out = []
    for k, t in enumerate(templates):
        if k >= MAX_TEMPLATES:
            raise VocabularyError(f"prompt_templates holds more than {MAX_TEMPLATES} templates")
        if not isinstance(t, str) or t.count("{}") != 1:
            raise VocabularyError(
                f"prompt template {_shown(repr(t))} must contain exactly one '{{}}' for the "
                "class name"
            )
        if len(t) > MAX_TEMPLATE_LENGTH:
            raise VocabularyError(
                f"prompt template {_shown(t)} is longer than {MAX_TEMPLATE_LENGTH} characters"
            )
        _check_characters(t, "prompt template")
        try:
            t.format("x")
        except (IndexError, KeyError, ValueError) as exc:
            raise VocabularyError(f"prompt template {t!r} is not a format string: {exc}") from exc
        out.append(t)
    if not out:
        raise VocabularyError("prompt_templates must not be empty")
    return tuple(out)


def validate_vocabulary(
    classes: Sequence[str],
    thing_classes: Sequence[str] = (),
    templates: Sequence[str] | None = None,
) -> tuple[list[str], list[str], tuple[str, ...] | None]:
    """The checked, whitespace-normalised ``(classes, thing_classes, templates)``
    (``templates`` stays ``None`` when not given); :class:`VocabularyError` otherwise.

    No state: the node's parameter callback calls it to refuse exactly what
    :meth:`Vocabulary.update` would refuse (see the module docstring).
    """
    names = _clean_names(classes, "classes")
    if not names:
        raise VocabularyError("classes must not be empty")
    things = _clean_names(thing_classes, "thing_classes")
    unknown = sorted(set(things) - set(names))
    if unknown:
        shown = unknown if len(unknown) <= 5 else [*unknown[:5], "..."]
        raise VocabularyError(f"thing_classes {shown} are not in classes")
    return names, things, None if templates is None else validate_templates(templates)


@dataclass
class Vocabulary:
    """Current classes with lifetime-stable ids (see the module docstring)."""

    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    _ids: dict[str, int] = field(default_factory=dict)
    _active: list[ClassEntry] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        classes: Sequence[str],
        thing_classes: Sequence[str] = (),
        templates: Sequence[str] | None = None,
    ) -> Vocabulary:
        vocab = cls()
        vocab.update(classes, thing_classes, templates)
        return vocab

    def update(
        self,
        classes: Sequence[str],
        thing_classes: Sequence[str] = (),
        templates: Sequence[str] | None = None,
    ) -> VocabularyChange:
        """Replace the active classes (validated first; nothing changes on error)."""
        names, thing_list, checked = validate_vocabulary(classes, thing_classes, templates)
        things = set(thing_list)
        new_templates = self.templates if checked is None else checked
        new_names = [n for n in names if n not in self._ids]
        if len(self._ids) + len(new_names) > MAX_CLASSES:
            raise VocabularyError(f"at most {MAX_CLASSES} class names over a vocabulary's life")

        before = [e.name for e in self._active]
        for n in new_names:
            self._ids[n] = len(self._ids)
        self._active = [
            ClassEntry(
                id=self._ids[n],
                name=n,
                thing=n in things,
                color=color_for(n),
                prompts=tuple(t.format(n) for t in new_templates),
            )
            for n in names
        ]
        changed_templates = new_templates != self.templates
        self.templates = new_templates
        return VocabularyChange(
            added=tuple(n for n in names if n not in before),
            removed=tuple(n for n in before if n not in names),
            changed_templates=changed_templates,
        )

    def trial(
        self,
        classes: Sequence[str],
        thing_classes: Sequence[str] = (),
        templates: Sequence[str] | None = None,
    ) -> Vocabulary:
        """The vocabulary :meth:`update` would give, ``self`` untouched (raises the same
        :class:`VocabularyError`, including the lifetime id limit of ``self``)."""
        trial = Vocabulary(templates=self.templates, _ids=dict(self._ids))
        trial.update(classes, thing_classes, templates)
        return trial

    @property
    def active(self) -> tuple[ClassEntry, ...]:
        return tuple(self._active)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self._active)

    @property
    def thing_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self._active if e.thing)

    @property
    def active_ids(self) -> np.ndarray:
        """(C,) uint16 class id of each logit column."""
        return np.array([e.id for e in self._active], dtype=np.uint16)

    @property
    def thing_mask(self) -> np.ndarray:
        """(C,) bool: logit column is a thing class."""
        return np.array([e.thing for e in self._active], dtype=bool)

    def thing_ids(self) -> np.ndarray:
        return self.active_ids[self.thing_mask]

    def id_of(self, name: str) -> int:
        try:
            return self._ids[name]
        except KeyError:
            raise VocabularyError(f"no class {name!r}; classes are {list(self.names)}") from None

    def entry(self, class_id: int) -> ClassEntry:
        for e in self._active:
            if e.id == class_id:
                return e
        raise VocabularyError(f"class id {class_id} is not active")

    def color_table(self) -> np.ndarray:
        """(max_id + 2, 3) uint8 colours indexed by class id; the last row (and any inactive
        id) is grey, so ``table[np.minimum(label, len(table) - 1)]`` colours unknown too."""
        size = (max(self._ids.values()) + 2) if self._ids else 1
        table = np.full((size, 3), 128, dtype=np.uint8)
        for e in self._active:
            table[e.id] = e.color
        return table

    def label_map(self) -> dict:
        """The ``panoptic/label_map`` document (JSON-ready)."""
        return {
            "unknown_id": UNKNOWN,
            "templates": list(self.templates),
            "classes": [
                {
                    "id": e.id,
                    "name": e.name,
                    "thing": e.thing,
                    "color": list(e.color),
                    "prompt": e.prompts[0],
                    "prompts": list(e.prompts),
                }
                for e in self._active
            ],
        }

    def label_map_json(self) -> str:
        return json.dumps(self.label_map(), separators=(",", ":"))
