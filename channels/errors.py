"""The root of every Outreach error, and the channels' branch of the tree: the type says what to do.

OutreachError                  the root (here, so that channels/ needs nothing of ours);
│                              outreach.errors draws the core's branches under it
├── ChannelError               a provider call failed; the type says whether a retry may help
│   ├── ConfigurationError     the adapter lacks what it needs: fail the run, send nothing
│   ├── TransientError         429, documented-safe 5xx, connection refused before the request left
│   │   └── RateLimited        carries the provider's Retry-After
│   ├── PermanentError         the provider refused this message: record it, never retry
│   │   └── RecipientRejected  invalid or unsubscribed recipient (may update consent/contact data)
│   └── OutcomeUnknown         the request may have left (timeout, reset): never resend blindly
└── WebhookError               a provider called us with something we do not process
    ├── SignatureRejected      not signed by the provider (or stale): 403, nothing read
    └── WebhookPayloadError    signed, but not the documented shape (also a ValueError): 400
"""

from __future__ import annotations


class OutreachError(Exception):
    """Base of every error Outreach raises on purpose; catch it to tell ours from a bug."""


class ChannelError(OutreachError):
    """Base of every error an adapter raises; ``code`` is the provider's code when it gave one."""

    def __init__(self, message: str, *, code: str | None = None, provider: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.provider = provider

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (code {self.code})" if self.code else base


class ConfigurationError(ChannelError):
    pass


class TransientError(ChannelError):
    pass


class RateLimited(TransientError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    pass


class RecipientRejected(PermanentError):
    """The recipient cannot receive this channel; ``opted_out`` marks a provider-side opt-out."""

    def __init__(self, message: str, *, opted_out: bool = False, **kw) -> None:
        super().__init__(message, **kw)
        self.opted_out = opted_out


class OutcomeUnknown(ChannelError):
    pass


class WebhookError(OutreachError):
    """A provider's request to our webhook that we refuse; ``provider`` names who sent it."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class SignatureRejected(WebhookError):
    """Not a fresh request correctly signed by the provider."""


class WebhookPayloadError(WebhookError, ValueError):
    """A signed request whose content is not what the webhook expects."""
