"""Channel errors: the type says whether a retry may help.

ChannelError
├── ConfigurationError     the adapter lacks what it needs: fail the run, send nothing
├── TransientError         429, documented-safe 5xx, connection refused before the request left
│   └── RateLimited        carries the provider's Retry-After
├── PermanentError         the provider refused this message: record it, never retry
│   └── RecipientRejected  invalid or unsubscribed recipient (may update consent/contact data)
└── OutcomeUnknown         the request may have left (timeout, reset): never resend blindly
"""

from __future__ import annotations


class ChannelError(Exception):
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
