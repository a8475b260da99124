"""The payment triggers, as configuration: which transactions make which offer candidates.

One definition, two lanes: the daily payment signals (outreach.candidates.payment_signals, set-based
SQL over the transactions table) and the live lane (outreach.live, one event at a time) read the
same ``triggers.yaml`` (beside the offers file; built-in defaults when it is absent). The *kinds*
of trigger are fixed here (what "airport ATM" or "balance crossed" means); their parameters —
merchant category codes, place words, counterparties, thresholds, offers, scores, relevance
windows — are the operator's.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML, YAMLError

from outreach.config import ConfigError, yaml_problem

TRIGGERS_FILE = "triggers.yaml"
MCC = r"^[0-9]{4}$"


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # offer code -> score offset: the first offer is the main one, the others rank a little lower
    offers: dict[str, float] = Field(min_length=1)
    # how long the moment lasts: an event older than this is not acted on live, and a message
    # that quiet hours would hold past it expires instead of going out later (None: no window)
    relevance_hours: float | None = Field(None, gt=0)


class AmountScore(BaseModel):
    """score = base + weight × min(1, amount / full_at): more money, more relevant."""

    model_config = ConfigDict(extra="forbid")
    base: float = Field(ge=0, le=1)
    weight: float = Field(ge=0, le=1)
    full_at: Decimal = Field(gt=0)

    def of(self, amount: Decimal) -> float:
        return self.base + self.weight * min(1.0, float(abs(amount) / self.full_at))


class AirportAtm(_Trigger):
    """A cash withdrawal (debit) at an ATM whose description, city or counterparty names an airport."""

    mcc: list[str] = Field(min_length=1)
    place_words: list[str] = Field(min_length=1)
    score: AmountScore

    @field_validator("mcc")
    @classmethod
    def _mcc(cls, value: list[str]) -> list[str]:
        return _mccs(value)

    @field_validator("place_words")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [w.strip().lower() for w in value if w.strip()]


class AirlineTicket(_Trigger):
    """A card payment (debit) at an airline: merchant category codes, single or as ranges."""

    mcc: list[str] = Field(default_factory=list)
    mcc_ranges: list[tuple[str, str]] = Field(default_factory=list)
    score: AmountScore

    @field_validator("mcc")
    @classmethod
    def _mcc(cls, value: list[str]) -> list[str]:
        return _mccs(value)

    @field_validator("mcc_ranges")
    @classmethod
    def _ranges(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for low, high in value:
            _mccs([low, high])
            if low > high:
                raise ValueError(f"range {low}-{high} runs backwards")
        return value

    @model_validator(mode="after")
    def _some(self) -> AirlineTicket:
        if not self.mcc and not self.mcc_ranges:
            raise ValueError("give mcc or mcc_ranges")
        return self

    def matches_mcc(self, mcc: str | None) -> bool:
        return bool(mcc) and (mcc in self.mcc or any(lo <= mcc <= hi for lo, hi in self.mcc_ranges))


class ChildBenefit(_Trigger):
    """A credit from the benefits agency whose description names the benefit."""

    counterparty_contains: list[str] = Field(default_factory=list)
    counterparty_equals: list[str] = Field(default_factory=list)
    description_contains: list[str] = Field(min_length=1)
    per_child_amount: Decimal = Field(gt=0)  # roughly one child's payment: the score grows per child
    score_base: float = Field(0.6, ge=0, le=1)
    score_per_child: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _some(self) -> ChildBenefit:
        if not self.counterparty_contains and not self.counterparty_equals:
            raise ValueError("give counterparty_contains or counterparty_equals")
        self.counterparty_contains = [w.lower() for w in self.counterparty_contains]
        self.counterparty_equals = [w.lower() for w in self.counterparty_equals]
        self.description_contains = [w.lower() for w in self.description_contains]
        return self

    def score(self, amount: Decimal) -> float:
        children = max(1, round(abs(amount) / self.per_child_amount))
        return self.score_base + self.score_per_child * children


class BalanceAbove(_Trigger):
    """The balance went above a threshold (and is still above it)."""

    above: Decimal = Field(gt=0)
    score_span: float = Field(3, gt=0)  # the score reaches 1 at above × (1 + score_span)

    def score(self, balance: Decimal) -> float:
        over = (balance - self.above) / (Decimal(str(self.score_span)) * self.above)
        return 0.5 + 0.5 * min(1.0, float(over))


class Triggers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    airport_atm: AirportAtm
    airline_ticket: AirlineTicket
    child_benefit: ChildBenefit
    large_balance: BalanceAbove
    very_large_balance: BalanceAbove

    def by_name(self) -> dict[str, _Trigger]:
        return {name: getattr(self, name) for name in type(self).model_fields}

    def offer_codes(self) -> set[str]:
        return {code for trigger in self.by_name().values() for code in trigger.offers}

    def candidates(self, name: str, score: float) -> list[tuple[str, float]]:
        """(offer, score in [0, 1]) for each offer of the trigger."""
        return [
            (code, round(min(1.0, max(0.0, score + offset)), 4))
            for code, offset in self.by_name()[name].offers.items()
        ]


class TriggersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    triggers: Triggers


def _mccs(value: list[str]) -> list[str]:
    import re

    for code in value:
        if not re.fullmatch(MCC, code):
            raise ValueError(f"{code!r} is not a four-digit merchant category code")
    return value


# The built-in definitions (also the content of the shipped triggers.yaml).
DEFAULT = {
    "triggers": {
        "airport_atm": {
            "mcc": ["6011"],
            "place_words": [
                "schiphol",
                "airport",
                "luchthaven",
                "flughafen",
                "aeroport",
                "aeropuerto",
                "aeroporto",
                "lotnisko",
                "havalimani",
            ],
            "offers": {"TRAVEL_INSURANCE": 0.0, "CREDIT_CARD": -0.1},
            "score": {"base": 0.5, "weight": 0.3, "full_at": 500},
            "relevance_hours": 6,
        },
        "airline_ticket": {
            "mcc": ["4511"],
            "mcc_ranges": [["3000", "3299"]],
            "offers": {"TRAVEL_INSURANCE": 0.0, "CREDIT_CARD": -0.1},
            "score": {"base": 0.6, "weight": 0.3, "full_at": 1000},
            "relevance_hours": 6,
        },
        "child_benefit": {
            "counterparty_contains": ["sociale verzekeringsbank"],
            "counterparty_equals": ["svb"],
            "description_contains": ["kinderbijslag"],
            "per_child_amount": 280,
            "offers": {"KIDS_SAVINGS": 0.0},
        },
        "large_balance": {"above": 25000, "score_span": 3, "offers": {"SAVINGS_BOOST": 0.0}},
        "very_large_balance": {"above": 100000, "score_span": 4, "offers": {"INVEST_CALL": 0.0}},
    }
}


def default_triggers() -> Triggers:
    return TriggersFile.model_validate(DEFAULT).triggers


def triggers_path(offers_file: str | Path) -> Path:
    return Path(offers_file).with_name(TRIGGERS_FILE)


def load_triggers(path: str | Path, offer_codes: set[str] | None = None) -> Triggers:
    """The triggers of ``path``; a missing file gives the built-in ones. With ``offer_codes``, a
    trigger naming an offer the offers file lacks is an error. Errors name the file and the key."""
    path = Path(path)
    if not path.exists():
        triggers = default_triggers()
    else:
        try:
            data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except YAMLError as exc:
            raise ConfigError(yaml_problem(path, exc)) from exc
        try:
            triggers = TriggersFile.model_validate(data or {}).triggers
        except ValidationError as exc:
            lines = [
                f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                for err in exc.errors()
            ]
            raise ConfigError("\n".join(lines)) from exc
    if offer_codes is not None:
        for name, trigger in triggers.by_name().items():
            for code in trigger.offers:
                if code not in offer_codes:
                    raise ConfigError(
                        f"{path}: triggers.{name}.offers.{code}: not an offer of the offers file"
                    )
    return triggers


def triggers_for(offers_file: str | Path, offer_codes: set[str] | None = None) -> Triggers:
    """The triggers beside the offers file (the one place both lanes read them from)."""
    return load_triggers(triggers_path(offers_file), offer_codes)
