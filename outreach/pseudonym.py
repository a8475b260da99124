"""Stable pseudonyms for customers: what the audit log and an erased customer's kept rows carry.

A keyed SHA-256 (HMAC) of the customer id, so the log and the tombstones never hold the id itself,
yet the bank, holding the id and the key, can still find them (``audit list --customer``, a
re-import of an erased customer). The key comes from OUTREACH_PSEUDONYM_KEY (environment or .env);
it must never change, or earlier pseudonyms stop matching.
"""

from __future__ import annotations

import hashlib
import hmac

from outreach.config import get_settings

PREFIX = "x-"  # marks a pseudonymised customer id in any customer_id column (String(32))
_DEFAULT_KEY = "outreach-pseudonym-v1"  # the demo's; production sets OUTREACH_PSEUDONYM_KEY


def _key() -> bytes:
    key = get_settings().pseudonym_key
    return (key.get_secret_value() if key else _DEFAULT_KEY).encode()


def subject_hash(customer_id: str) -> str:
    """The full 64-hex keyed hash: the tombstone's key."""
    return hmac.new(_key(), customer_id.strip().encode(), hashlib.sha256).hexdigest()


def pseudonym(customer_id: str) -> str:
    """What replaces the customer id in rows kept after erasure, and names the subject in the audit log."""
    return PREFIX + subject_hash(customer_id)[:30]


def is_pseudonym(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) == len(PREFIX) + 30
