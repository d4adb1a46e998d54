"""Random streams derived from the world seed and a name: independent of call order."""

from __future__ import annotations

import hashlib
import random


def derive_rng(seed: int, *names: object) -> random.Random:
    """A random.Random seeded by (seed, names) through SHA-256, never Python's salted hash()."""
    key = "/".join([str(seed), *map(str, names)]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
