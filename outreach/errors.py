"""Every error Outreach raises on purpose, under one root. Each class lives beside its code; this
module holds the root's core branches and draws the whole tree.

OutreachError (channels.errors)
├── ChannelError ...              provider calls; the tree is drawn in channels.errors
├── WebhookError                  a provider's request we refuse (channels.errors)
│   ├── SignatureRejected         403: not the provider's signature, or stale
│   └── WebhookPayloadError       400: signed, but not the documented shape (also ValueError)
├── InputError (ValueError)       bad input from an operator, a file or a request: one clear line
│   ├── ConfigError               outreach.config: settings, offers.yaml
│   ├── TemplateError             outreach.rendering: a template that cannot render (file:line)
│   ├── CandidateSourceError      outreach.candidates.base: a candidate file or query as a whole
│   ├── ImportFileError           outreach.imports.csvfile: an import file as a whole
│   ├── CampaignFileError         outreach.campaigns.loader: campaign files, one problem a line
│   ├── ConsentError              outreach.consent: an unknown scope or choice
│   ├── InvalidToken              outreach.unsubscribe: a link we did not sign
│   ├── AccountError              outreach.calls.accounts: teams and agents
│   ├── CallError                 outreach.calls.tasks: an agent's action that cannot be done
│   ├── UserError                 outreach.cli.errors: a command's argument or state, with its exit status
│   ├── PoisonEvent               outreach.live.events: a payment event we cannot act on (dead-lettered)
│   ├── ApiClientError            outreach.api_clients: a bank system's API key or its scopes
│   ├── KeyReused                 outreach.idempotency: an Idempotency-Key sent with another request
│   ├── BadCursor                 outreach.consent_feed: a changes-feed cursor we did not issue
│   ├── ObjectionError            outreach.objections: an e-mailed objection that cannot be applied
│   ├── InvalidCode               outreach.preferences: a preference-centre code we did not seal
│   ├── ExportError               outreach.calls.export: a call-list export
│   └── PrintBatchError           outreach.printing: the day's letters are inconsistent
├── NotFound (LookupError)        a named thing does not exist
│   ├── UnknownCampaign           outreach.campaigns.state
│   ├── UnknownCustomer           outreach.subjects.erase
│   └── UnknownSubject            outreach.subjects.export: neither a customer nor an erased one
├── DayAlreadyRunning (RuntimeError)  outreach.day_lock: another run of the same day holds it
├── BrokerUnavailable (OSError)   outreach.live.jetstream: the NATS server cannot be reached
└── RunIncomplete (RuntimeError)  a flow run ends failed, saying why; a rerun takes over
    ├── RateLimitMissing          flows.limits: a rate limit the settings name is not configured
    └── DayIncomplete             flows.daily: messages of the day are left

Built-in bases stay (``InputError`` is a ValueError, ...), so ``except ValueError`` still holds.
"""

from __future__ import annotations

from channels.errors import OutreachError, SignatureRejected, WebhookError, WebhookPayloadError


class InputError(OutreachError, ValueError):
    """Input we refuse; the message names where (file, row, field or argument) and why."""


class NotFound(OutreachError, LookupError):
    """A thing asked for by name that does not exist."""


class RunIncomplete(OutreachError, RuntimeError):
    """A run that could not finish its work; the message says what is left."""


__all__ = [
    "InputError",
    "NotFound",
    "OutreachError",
    "RunIncomplete",
    "SignatureRejected",
    "WebhookError",
    "WebhookPayloadError",
]
