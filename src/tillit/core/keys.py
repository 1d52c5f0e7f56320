"""When a secret key is too weak: the one check behind the pseudonymisation and audit-trail keys.

A key an attacker could guess defeats the HMAC it feeds. Length alone is not enough
(32 identical bytes are 32 bytes), so a key must also take many distinct byte values and
carry enough entropy: a typed phrase, a repeated word or a short pattern fails.
"""

from __future__ import annotations

import math
from collections import Counter

KEY_BYTES = 32
# A random 32-byte key holds about 28 distinct byte values; fewer than this is a
# made-up key (b"0" * 32, a short phrase repeated) that an attacker would try first.
MIN_DISTINCT_KEY_BYTES = 16
# 32 random bytes show about 157 bits by this measure; a repeated short pattern far fewer.
MIN_ENTROPY_BITS = 128.0


def entropy_bits(key: bytes) -> float:
    """The key's length times the Shannon entropy of its byte frequencies: a floor check, not a proof."""
    if not key:
        return 0.0
    counts = Counter(key)
    per_byte = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    return per_byte * len(key)


def key_weakness(key: bytes) -> str | None:
    """Why a key is too weak to keep its HMACs unguessable, or None when it is fine.

    The words complete a sentence that starts with the key's source ("key file k.bin ...")
    and never quote the key.
    """
    if len(key) < KEY_BYTES:
        return (
            f"holds {len(key)} bytes; at least {KEY_BYTES} bytes, drawn at random, are "
            "needed so it cannot be guessed"
        )
    distinct = len(set(key))
    if distinct < MIN_DISTINCT_KEY_BYTES:
        return (
            f"is not random enough: its {len(key)} bytes take only {distinct} distinct "
            "value(s) (a random key has about 28)"
        )
    if entropy_bits(key) < MIN_ENTROPY_BITS:
        return "is not random enough (repeated or patterned bytes)"
    return None
