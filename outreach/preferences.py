"""Preference-centre codes: short, authenticated, no customer id in them.

A code is the customer id sealed with AES-SIV (deterministic authenticated encryption) under a key
derived from OUTREACH_UNSUBSCRIBE_SECRET, in base32 without padding: case-insensitive, so a letter
can print it for typing (grouped by four), and ~40 characters in an e-mail or SMS link. The same
customer always gets the same code; a changed character fails authentication. Codes do not expire:
all they allow is an objection (opting back in goes through the bank's API).
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from outreach.config import ConfigError, Settings
from outreach.errors import InputError

MAX_CODE_LENGTH = 120  # a 32-character customer id makes 77; longer input is not ours


class InvalidCode(InputError):
    """Not a code we issued (typo, altered, or made under another secret)."""


@lru_cache(maxsize=4)
def _cipher_for(secret: str) -> AESSIV:  # the dispatcher makes two codes per message: derive once
    kdf = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"outreach preference centre")
    return AESSIV(kdf.derive(secret.encode("utf-8")))


def _cipher(settings: Settings) -> AESSIV:
    secret = settings.unsubscribe_secret.get_secret_value() if settings.unsubscribe_secret else ""
    if not secret:
        raise ConfigError("OUTREACH_UNSUBSCRIBE_SECRET is not set: preference codes cannot be made")
    return _cipher_for(secret)


def make_code(settings: Settings, customer_id: str) -> str:
    sealed = _cipher(settings).encrypt(customer_id.encode("utf-8"), None)
    return base64.b32encode(sealed).decode("ascii").rstrip("=").lower()


def preference_url(settings: Settings, customer_id: str) -> str:
    """The link for e-mails and texts (a letter prints the code and the bare /p address)."""
    return f"{settings.public_url.rstrip('/')}/p/{make_code(settings, customer_id)}"


def letter_code(settings: Settings, customer_id: str) -> str:
    code = make_code(settings, customer_id).upper()
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def read_code(settings: Settings, code: str) -> str:
    """The customer id a code was made for; InvalidCode otherwise. Dashes, spaces and case are
    ignored, so a code typed from a letter works."""
    cleaned = "".join(ch for ch in code if ch.isalnum()).upper()
    if not cleaned or len(cleaned) > MAX_CODE_LENGTH:
        raise InvalidCode("not a preference code")
    try:
        sealed = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
        return _cipher(settings).decrypt(sealed, None).decode("utf-8")
    except (binascii.Error, InvalidTag, ValueError) as exc:
        raise InvalidCode("not a preference code") from exc
