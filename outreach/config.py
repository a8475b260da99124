"""Settings from the environment (OUTREACH_*) and the offers/policy file marketing operations edit."""

from __future__ import annotations

import re
from datetime import date, time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from ruamel.yaml import YAML, YAMLError

from channels.errors import ConfigurationError
from outreach.assessment import LegitimateInterest
from outreach.errors import InputError

ChannelName = Literal["sms", "email", "letter", "call"]
# consent scope for each channel: a call is a "phone" contact
CHANNEL_SCOPE: dict[str, str] = {"sms": "sms", "email": "email", "letter": "letter", "call": "phone"}


class ConfigError(InputError):
    """Invalid configuration, naming the file, the key and why."""


def _env(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore", populate_by_name=True)


class TwilioSettings(BaseSettings):
    """The Twilio SMS adapter and its webhooks: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (the names
    Twilio's own tools use) and OUTREACH_TWILIO_*."""

    model_config = _env("OUTREACH_TWILIO_")

    account_sid: str | None = Field(None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "account_sid"))
    # signs the status and inbound callbacks too (outreach.web.webhooks)
    auth_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "auth_token")
    )
    from_: str | None = Field(None, validation_alias=AliasChoices("OUTREACH_TWILIO_FROM", "from_"))
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    validity_period: int | None = None
    api_url: str | None = None

    def adapter_options(self) -> dict[str, object]:
        """The TwilioSMS arguments; names every variable that is missing."""
        missing = [name for name, value in (("TWILIO_ACCOUNT_SID", self.account_sid),) if not value]
        if self.auth_token is None or not self.auth_token.get_secret_value():
            missing.append("TWILIO_AUTH_TOKEN")
        if not (self.from_ or self.messaging_service_sid):
            missing.append("OUTREACH_TWILIO_FROM or OUTREACH_TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            raise ConfigurationError(
                f"SMS backend 'twilio' is configured but {', '.join(missing)} is not set", provider="twilio"
            )
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "from_": self.from_ or None,
            "messaging_service_sid": self.messaging_service_sid or None,
            "status_callback": self.status_callback or None,
            "validity_period": self.validity_period,
            "api_url": self.api_url or None,
        }


class SendGridSettings(BaseSettings):
    """The SendGrid email adapter (SENDGRID_API_KEY, OUTREACH_EMAIL_FROM[_NAME], OUTREACH_SENDGRID_*)
    and its signed event webhook (OUTREACH_SENDGRID_WEBHOOK_*)."""

    model_config = _env("OUTREACH_SENDGRID_")

    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("SENDGRID_API_KEY", "api_key"))
    from_email: str | None = Field(None, validation_alias=AliasChoices("OUTREACH_EMAIL_FROM", "from_email"))
    from_name: str | None = Field(
        None, validation_alias=AliasChoices("OUTREACH_EMAIL_FROM_NAME", "from_name")
    )
    api_url: str | None = None
    asm_group: int | None = None
    categories: str = "outreach"  # comma-separated
    webhook_public_key: str | None = None  # base64 DER key SendGrid shows for signed events
    webhook_tolerance_seconds: int = Field(600, ge=1)  # older signed timestamps are replays

    def adapter_options(self) -> dict[str, object]:
        """The SendGridEmail arguments; names every variable that is missing."""
        missing = []
        if self.api_key is None or not self.api_key.get_secret_value():
            missing.append("SENDGRID_API_KEY")
        if not self.from_email:
            missing.append("OUTREACH_EMAIL_FROM")
        if missing:
            raise ConfigurationError(
                f"email backend 'sendgrid' is configured but {', '.join(missing)} is not set",
                provider="sendgrid",
            )
        categories = [c.strip() for c in self.categories.split(",") if c.strip()]
        return {
            "api_key": self.api_key,
            "from_email": self.from_email,
            "from_name": self.from_name or None,
            "api_url": self.api_url or None,
            "asm_group_id": self.asm_group,
            "categories": categories or ("outreach",),
        }


class CallSettings(BaseSettings):
    """The call centre (OUTREACH_CALLS_*); calling hours come from offers.yaml."""

    model_config = _env("OUTREACH_CALLS_")

    max_attempts: int = Field(3, ge=1, le=10)  # calls per task per day, no-answer retries included
    retry_minutes: int = Field(60, ge=1, le=600)  # wait after "no answer" before the next try
    claim_grace_minutes: int = Field(60, ge=0)  # a call in hand at window end may still be finished
    holiday_country: str = "NL"
    # signs the agents' session cookies; unset: a random one per process (sessions end on restart)
    session_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OUTREACH_SESSION_SECRET", "session_secret")
    )


class ConsentSettings(BaseSettings):
    """The consent API, preference centre and e-mailed objections (OUTREACH_CONSENT__<NAME>)."""

    model_config = _env("OUTREACH_CONSENT__")

    # per API client unless its own limit is set (`outreach api-clients create --rate-limit`);
    # counted per server process: with --workers N a client gets up to N times this
    api_rate_limit: str = Field("100/second", pattern=r"^\d{1,6}/(second|minute|hour)$")
    changes_page_max: int = Field(1000, ge=1, le=10_000)  # most changes one feed request returns
    # SendGrid Inbound Parse posts to <public_url>/inbound/sendgrid/<this secret>; unset: 404
    inbound_parse_secret: SecretStr | None = None


class Settings(BaseSettings):
    """Every setting, one tree: the core's here, one nested model per provider and subsystem."""

    model_config = _env("OUTREACH_")

    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    sendgrid: SendGridSettings = Field(default_factory=SendGridSettings)
    calls: CallSettings = Field(default_factory=CallSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)

    database_url: str = "sqlite:///outreach.db"
    outbox_dir: Path = Path("outbox")
    offers_file: Path = Path("offers.yaml")
    templates_dir: Path = Path("templates")
    campaigns_dir: Path = Path("campaigns")
    sms_backend: str = "outbox"
    email_backend: str = "outbox"
    letter_backend: str = "outbox"
    call_backend: str = "outbox"
    batch_size: int = Field(500, ge=1, le=10_000)
    max_workers: int = Field(4, ge=1, le=64)
    public_url: str = "http://127.0.0.1:8000"  # the base URL providers call: signatures cover it
    nats_url: str = "nats://127.0.0.1:4222"  # the live lane's broker (NATS with JetStream)

    # web service: unsubscribe links, request limits (the providers' webhook secrets: twilio, sendgrid)
    unsubscribe_secret: SecretStr | None = None
    unsubscribe_max_age_days: int = Field(365, ge=1)
    max_request_bytes: int = Field(1024 * 1024, ge=1024)  # SendGrid posts batches of at most ~768 KB
    # /metrics counts ledger messages of this many plan days (today and yesterday by default): the
    # scrape's query time grows with the rows in the window (bench/results/metrics.md)
    metrics_ledger_days: int = Field(2, ge=1, le=62)
    # answers to inbound SMS keywords (Twilio's Advanced Opt-Out, when on, answers instead)
    sms_help_text: str = (
        "Berichten over aanbiedingen van uw bank. Stuur STOP om u af te melden. "
        "Offers from your bank: reply STOP to opt out."
    )
    # the STOP reply offers the one step to every channel (STOP ALLES / STOP ALL: all marketing)
    sms_stop_text: str = (
        "U bent afgemeld voor sms. Helemaal geen aanbiedingen meer? Stuur STOP ALLES. "
        "No more texts. No offers at all? Reply STOP ALL."
    )
    sms_stop_all_text: str = (
        "U ontvangt geen aanbiedingen meer, via geen enkel kanaal. You will get no more offers at all."
    )
    sms_start_text: str = "U bent weer aangemeld voor sms-berichten. You are subscribed again."
    # messages held (quiet hours, weekends) stay due for this many days after their plan date
    carry_days: int = Field(5, ge=0, le=31)
    # re-check the channel's quiet hours right before sending (a run that is late or resumed
    # later must not send into quiet hours); only a test suite running at any hour turns it off
    send_window_check: bool = True
    sms_max_segments: int = Field(2, ge=1, le=10)  # `outreach templates check` fails above this
    letter_batch_size: int = Field(500, ge=1)  # letters per print batch
    letter_window_mm: str = "20,45,85,45"  # envelope window: left, top, width, height (DIN 5008 B)
    # several workers (docs/production.md): per-channel rate limits shared through Prefect global
    # concurrency limits named <prefix><channel>; off for the embedded demo (they must be created)
    rate_limits: bool = False
    rate_limit_prefix: str = "outreach-"
    # a claim older than this is taken for a dead worker's and reconciled; longer than any batch
    claim_lease_seconds: int = Field(900, ge=1)
    worker_name: str | None = None  # names this process in the ledger's claimed_by (default: host)
    # rendered message content (personal data) is kept this long after the message's day, for
    # `outreach explain`; `outreach message purge-content` deletes what is older
    content_retention_days: int = Field(400, ge=1)
    # keys the customer pseudonyms of the audit log and of erased customers (outreach.pseudonym):
    # set once in production and never change it, or earlier pseudonyms stop matching
    pseudonym_key: SecretStr | None = None

    def backend_for(self, channel: str) -> str:
        return getattr(self, f"{channel}_backend")


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time
    end: time
    working_days_only: bool = False


class Caps(BaseModel):
    """Contact caps, counted from the ledger: a window of N days is the run date and the N-1 before it."""

    model_config = ConfigDict(extra="forbid")
    per_7_days: int = Field(1, ge=0)  # across all channels
    per_30_days: int = Field(3, ge=0)  # across all channels
    per_channel_7_days: dict[ChannelName, int] = Field(default_factory=dict)
    per_channel_30_days: dict[ChannelName, int] = Field(default_factory=dict)


# validation context key: an offers file (not an Offer built in code) must carry each assessment
REQUIRE_ASSESSMENT = "require_assessment"

SuppressionScope = Literal["all"] | list[str]
# what each suppression list blocks: "all" marketing, or only offers on the listed topics
DEFAULT_SUPPRESSION_SCOPES: dict[str, SuppressionScope] = {
    "deceased": "all",
    "minor": "all",
    "vulnerable": "all",
    # duty of care: a customer in arrears / debt collection gets no marketing at all by default;
    # narrow it to [credit] to allow e.g. savings offers (credit must stay in the list)
    "arrears": "all",
    "complaint": "all",
}


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    caps: Caps = Field(default_factory=Caps)
    cooldown_days: int = Field(90, ge=0)
    # outcome rule: `limit` "not interested" answers on a topic within `window` days suppress the
    # topic for `suppress_days` from the latest of them
    not_interested_limit: int = Field(2, ge=1)
    not_interested_window_days: int = Field(365, ge=1)
    not_interested_suppress_days: int = Field(180, ge=0)
    suppression_scopes: dict[str, SuppressionScope] = Field(
        default_factory=lambda: dict(DEFAULT_SUPPRESSION_SCOPES)
    )
    quiet_hours: dict[ChannelName, QuietHours] = Field(
        default_factory=lambda: {
            "sms": QuietHours(start=time(9), end=time(20)),
            "call": QuietHours(start=time(9), end=time(20), working_days_only=True),
        }
    )
    capacity: dict[ChannelName, int] = Field(default_factory=lambda: {"call": 200, "letter": 1000})
    # channels that need an explicit opt-in (e.g. telemarketing: [call]); others are opt-out
    opt_in_channels: list[ChannelName] = Field(default_factory=list)
    holiday_country: str = "NL"  # public holidays on which no calls are made
    send_hour: time = time(10)  # when the day's messages are due, in the customer's zone
    default_timezone: str = "Europe/Amsterdam"

    @field_validator("suppression_scopes")
    @classmethod
    def _scopes(cls, value: dict[str, SuppressionScope]) -> dict[str, SuppressionScope]:
        for reason, scope in value.items():
            if not re.fullmatch(r"[a-z_]{1,20}", reason):
                raise ValueError(f"suppression reason {reason!r}: lower-case letters and _ only")
            if scope != "all" and not scope:
                raise ValueError(f"suppression reason {reason!r}: give 'all' or a non-empty list of topics")
        return value

    def history_days(self, offers: list[Offer]) -> int:
        """How many days of ledger history the caps, cooldowns and channel caps look back."""
        cooldowns = [o.cooldown_days for o in offers if o.cooldown_days is not None]
        return max([30, self.cooldown_days, *cooldowns])


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,40}$")
    product: str
    topic: str
    priority: int = Field(ge=1, le=100)
    channels: list[ChannelName] = Field(min_length=1)
    cooldown_days: int | None = Field(None, ge=0)
    templates: dict[ChannelName, str] = Field(default_factory=dict)
    valid_from: date | None = None
    valid_until: date | None = None
    legal_basis: Literal["legitimate_interest", "consent"] = "legitimate_interest"
    # the assessment behind a legitimate-interest offer: required in an offers file (load_offers);
    # optional here so code and tests can build an Offer without one
    legitimate_interest: LegitimateInterest | None = None

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    @model_validator(mode="after")
    def _window(self) -> Offer:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    @model_validator(mode="after")
    def _assessment_required(self, info: ValidationInfo) -> Offer:
        required = bool(info.context and info.context.get(REQUIRE_ASSESSMENT))
        if required and self.legal_basis == "legitimate_interest" and self.legitimate_interest is None:
            raise ValueError(
                "legitimate_interest: required for an offer on legal_basis legitimate_interest "
                "(purpose, payment_data, necessity, balancing, safeguards, retention)"
            )
        return self

    def template_for(self, channel: str) -> str:
        return self.templates.get(channel, self.code.lower())

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


class OffersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Policy = Field(default_factory=Policy)
    offers: list[Offer] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> OffersFile:
        seen: set[str] = set()
        for offer in self.offers:
            if offer.code in seen:
                raise ValueError(f"offer code {offer.code} is defined twice")
            seen.add(offer.code)
        return self

    def by_code(self) -> dict[str, Offer]:
        return {offer.code: offer for offer in self.offers}


def _key_path(loc: tuple, data: object) -> str:
    """Turn a pydantic location into a readable key, naming offers by their code, and the line of
    the innermost key or item the file has (ruamel.yaml remembers where each came from)."""
    parts: list[str] = []
    node = data
    line = None
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            code = node[item].get("code") if item < len(node) and isinstance(node[item], dict) else None
            parts.append(f"[{code or item}]")
            line = _line(node, item, line)
            node = node[item] if item < len(node) else None
        else:
            parts.append(f".{item}" if parts else str(item))
            line = _line(node, item, line) if isinstance(node, dict) and item in node else line
            node = node.get(item) if isinstance(node, dict) else None
    where = "".join(parts)
    return f"line {line}: {where}" if line and where else where


def _line(container: object, key: object, default: int | None) -> int | None:
    lc = getattr(container, "lc", None)
    try:
        return (lc.key(key) if isinstance(container, dict) else lc.item(key))[0] + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return default


def yaml_problem(path: Path, exc: YAMLError) -> str:
    """One line naming the file and where in it, not the ``<unicode string>`` a YAML parser names."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}: not valid YAML: {problem}"


def load_offers(path: str | Path) -> OffersFile:
    path = Path(path)
    try:
        # the campaigns' loader too: one YAML library, YAML 1.2 ("08:30" is text), with line numbers
        data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except YAMLError as exc:
        raise ConfigError(yaml_problem(path, exc)) from exc
    try:
        return OffersFile.model_validate(data or {}, context={REQUIRE_ASSESSMENT: True})
    except ValidationError as exc:
        lines = [f"{path}: {_key_path(err['loc'], data) or '(top)'}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc


@lru_cache
def get_settings() -> Settings:
    return Settings()
