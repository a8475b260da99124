"""Channel adapters: one module per provider over the small interface in ``channels.base``.

Adapters register under the ``outreach.channels`` entry-point group as ``<backend>-<kind>``
(``outbox-sms``, ``twilio-sms``, ...), so a new channel is one module plus one line.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from channels.base import Channel
from channels.errors import ConfigurationError

KINDS = ("sms", "email", "letter", "call")


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group="outreach.channels"))


def load_channel(kind: str, backend: str, **options: object) -> Channel:
    name = f"{backend}-{kind}"
    found = entry_points(group="outreach.channels", name=name)
    if not found:
        raise ConfigurationError(f"no channel backend {name!r}; installed: {', '.join(available())}")
    factory = next(iter(found)).load()
    return factory(**options)
