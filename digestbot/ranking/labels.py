"""Strings kept in an index segment as two arrays: UTF-8 bytes and character offsets.

The strings are NUL-terminated, so reading them is one split when none holds a NUL;
the offsets are exact either way.

A segment stores each paper's id and title this way, so that ``digestbot rank``
lists the whole store without asking the database for 100,000 titles. Strings
``2i`` and ``2i + 1`` are row ``i``'s id and title.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import numpy.typing as npt

Bytes = npt.NDArray[np.uint8]
Offsets = npt.NDArray[np.int64]


SEPARATOR = "\x00"


def pack(strings: Sequence[str]) -> tuple[Bytes, Offsets]:
    """(UTF-8 bytes of the strings joined by NUL, character offsets: ``len(strings) + 1``).

    String ``i`` is ``text[ptr[i]:ptr[i + 1] - 1]`` (the separator dropped).
    """
    ptr = np.zeros(len(strings) + 1, dtype=np.int64)
    if strings:
        sizes = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)) + 1
        np.cumsum(sizes, out=ptr[1:])
    blob = "".join(s + SEPARATOR for s in strings).encode("utf-8")
    return np.frombuffer(blob, dtype=np.uint8).copy(), ptr


def unpack(blob: Bytes, ptr: Offsets) -> list[str]:
    text = np.asarray(blob).tobytes().decode("utf-8")
    count = len(ptr) - 1
    if count <= 0:
        return []
    parts = text.split(SEPARATOR)
    if len(parts) == count + 1:  # no string holds the separator: split in C
        parts.pop()
        return parts
    bounds = np.asarray(ptr).tolist()
    return [text[a : b - 1] for a, b in pairwise(bounds)]
