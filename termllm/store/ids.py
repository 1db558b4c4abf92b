"""Short ids that people can copy, read aloud and type a prefix of."""

from __future__ import annotations

import secrets

# Crockford's base32 in lower case: digits and letters without i, l, o and u, which are easy to
# misread. Ten of them carry 50 random bits, so collisions are rare enough to retry on.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 10


def new_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))
