"""The ``list`` reply's JSON text: ``commands.respond`` of ``render.listing``, byte for byte,
written faster.                                                                           pure

``json.dumps(..., indent=4)`` (what ``respond`` writes) runs json's pure-Python encoder: about
6 µs per level, most of ``list`` at thousands of image-level schedules (what ``ls -R`` asks).
Levels share few schedules, so their entries share few *shapes*: the entry with each string
value (a name, a pause time) taken out. Each shape is written once per call by ``respond``
itself, with marks where the strings go; each level's entry is that text with its own strings,
encoded as json encodes them, put back. Nothing here restates the format: the text around the
entries and between them comes from ``respond`` of a probe too.
"""

from __future__ import annotations

import json
from typing import Any, Final

from .commands import MARK, cut, respond

_KEY_MARK: Final = MARK  # no level id is this: its encoded form shows a position
_ENCODED_KEY_MARK: Final = json.dumps(_KEY_MARK)
Shape = tuple[Any, ...]


# '{', then "<id>": <entry> items between these, then '}'
_HEAD, _KEY_SEPARATOR, _SEPARATOR, _, _TAIL = cut(
    respond({"\x00": "\x01", "\x02": "\x03"}), *map(json.dumps, "\x00\x01\x02\x03")
)


def _mark(i: int) -> str:
    return f"\x00{i}\x00"  # no string of a level holds NUL


def _shape(entry: dict[str, Any]) -> Shape:
    """What entries written alike share: their keys, and each value that is not a string
    (by identity: ``render.listing`` gives levels with one schedule the same list)."""
    return tuple((key, None if type(value) is str else id(value)) for key, value in entry.items())


def _template(entry: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``entry`` as ``respond`` writes it as a level's value, cut where its strings go; and
    those strings' keys, in the order they are written (sorted)."""
    keys = sorted(key for key, value in entry.items() if type(value) is str)
    marked = {key: _mark(keys.index(key)) if key in keys else value for key, value in entry.items()}
    text = respond({_KEY_MARK: marked})
    start = len(_HEAD) + len(_ENCODED_KEY_MARK) + len(_KEY_SEPARATOR)
    body = text[start : len(text) - len(_TAIL)]
    return cut(body, *(json.dumps(_mark(i)) for i in range(len(keys)))), keys


def text(listed: dict[str, dict[str, Any]]) -> str:
    """``respond(listed)``: the ``list`` reply of ``render.listing``'s levels."""
    if not listed or any(type(entry) is not dict for entry in listed.values()):
        return respond(listed)
    encode = json.dumps  # a string alone: json's C escaping, as the indenting encoder's
    templates: dict[Shape, tuple[list[str], list[str]]] = {}
    parts: list[str] = []
    for key in sorted(listed):  # respond sorts keys: ids are unique strings
        entry = listed[key]
        shape = _shape(entry)
        found = templates.get(shape)
        if found is None:
            found = templates[shape] = _template(entry)
        pieces, strings = found
        parts.extend((_SEPARATOR, encode(key), _KEY_SEPARATOR, pieces[0]))
        for i, name in enumerate(strings):
            parts.extend((encode(entry[name]), pieces[i + 1]))
    parts[0] = _HEAD
    parts.append(_TAIL)
    return "".join(parts)
