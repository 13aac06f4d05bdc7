"""Strings kept in an index segment as two arrays: UTF-8 bytes and character offsets.

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


def pack(strings: Sequence[str]) -> tuple[Bytes, Offsets]:
    """(UTF-8 bytes of all the strings joined, character offsets: ``len(strings) + 1``)."""
    ptr = np.zeros(len(strings) + 1, dtype=np.int64)
    if strings:
        np.cumsum(np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)), out=ptr[1:])
    blob = "".join(strings).encode("utf-8")
    return np.frombuffer(blob, dtype=np.uint8).copy(), ptr


def unpack(blob: Bytes, ptr: Offsets) -> list[str]:
    text = np.asarray(blob).tobytes().decode("utf-8")
    bounds = np.asarray(ptr).tolist()
    return [text[a:b] for a, b in pairwise(bounds)]
