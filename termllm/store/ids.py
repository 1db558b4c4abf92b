"""Short ids that people can copy, read aloud and type a prefix of."""

from __future__ import annotations

import hashlib
import secrets

# Crockford's base32 in lower case: digits and letters without i, l, o and u, which are easy to
# misread. Ten of them carry 50 random bits, so collisions are rare enough to retry on.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 10


def new_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


def is_id(text: str) -> bool:
    """Whether `text` has the form of the ids termllm makes."""
    return len(text) == ID_LENGTH and all(character in ALPHABET for character in text)


def derived_id(text: str) -> str:
    """An id made from any other id, always the same one for the same text: an imported
    conversation whose id does not have termllm's form gets one, and so is recognised when the
    same file is imported again."""
    digest = hashlib.sha256(b"termllm import\0" + text.encode("utf-8")).digest()
    bits = int.from_bytes(digest[:8], "big")
    return "".join(ALPHABET[(bits >> (5 * n)) & 31] for n in range(ID_LENGTH))
