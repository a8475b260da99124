"""Unsubscribe links: signed, expiring tokens that name a customer and a consent scope.

The token is stateless, so the dispatcher can mint one per message without a database write:
the (customer, scope) pair is encrypted with AES-GCM under a key derived from
OUTREACH_UNSUBSCRIBE_SECRET (no customer id in clear in the URL, not even base64), and the
result is signed and time-stamped by itsdangerous' URLSafeTimedSerializer, which enforces expiry.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from outreach.config import ConfigError, Settings, get_settings
from outreach.consent import ConsentError, check_scope
from outreach.errors import InputError

SALT = "outreach.unsubscribe.v1"
MAX_TOKEN_LENGTH = 512  # real tokens are ~130 characters; longer input is not ours


class InvalidToken(InputError):
    """Not a token we issued (forged, altered, truncated or for another secret)."""


class ExpiredToken(InvalidToken):
    """A genuine token older than OUTREACH_UNSUBSCRIBE_MAX_AGE_DAYS."""


def _secret(settings: Settings) -> str:
    if settings.unsubscribe_secret is None or not settings.unsubscribe_secret.get_secret_value():
        raise ConfigError("OUTREACH_UNSUBSCRIBE_SECRET is not set: unsubscribe links cannot be signed")
    return settings.unsubscribe_secret.get_secret_value()


def _cipher(secret: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"outreach unsubscribe encryption")
    return AESGCM(key.derive(secret.encode("utf-8")))


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def make_token(settings: Settings, customer_id: str, scope: str) -> str:
    secret = _secret(settings)
    check_scope(scope)
    nonce = os.urandom(12)
    plain = json.dumps([customer_id, scope], separators=(",", ":")).encode("utf-8")
    sealed = nonce + _cipher(secret).encrypt(nonce, plain, SALT.encode())
    return _serializer(secret).dumps(base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("="))


def unsubscribe_url(settings: Settings, customer_id: str, scope: str) -> str:
    """The link for a message's footer and its ``List-Unsubscribe`` header."""
    return f"{settings.public_url.rstrip('/')}/unsubscribe/{make_token(settings, customer_id, scope)}"


def verify(
    token: str, settings: Settings | None = None, *, max_age_days: int | None = None
) -> tuple[str, str]:
    """(customer_id, scope) of a token we issued; InvalidToken or ExpiredToken otherwise."""
    settings = settings or get_settings()
    secret = _secret(settings)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("not an unsubscribe token")
    max_age = (max_age_days or settings.unsubscribe_max_age_days) * 86400
    try:
        sealed_text = _serializer(secret).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise ExpiredToken("unsubscribe link has expired") from exc
    except BadSignature as exc:
        raise InvalidToken("unsubscribe token signature does not match") from exc
    try:
        sealed = base64.urlsafe_b64decode(str(sealed_text) + "=" * (-len(str(sealed_text)) % 4))
        plain = _cipher(secret).decrypt(sealed[:12], sealed[12:], SALT.encode())
        customer_id, scope = json.loads(plain)
        return str(customer_id), check_scope(str(scope))
    except (InvalidTag, ValueError, TypeError, binascii.Error, ConsentError) as exc:
        raise InvalidToken("unsubscribe token content is not valid") from exc
