"""The schema of a campaign file. Checks that need nothing but the file live here; checks against
offers.yaml and the templates (references) live in ``loader``."""

from __future__ import annotations

import re
from datetime import date, time

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from outreach.config import ChannelName

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"  # also a Prefect artifact key and a candidate trigger_ref
PRODUCT_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
TRIGGER = "campaign"  # candidates.trigger of every campaign candidate; trigger_ref is the campaign name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


class AgeBand(Strict):
    min: int = Field(18, ge=0, le=120)
    max: int = Field(120, ge=0, le=120)

    @model_validator(mode="after")
    def _ordered(self) -> AgeBand:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class Audience(Strict):
    """Who the campaign is for. Every listed condition must hold; an empty list means no condition."""

    age: AgeBand | None = None
    postcode_prefixes: list[str] = Field(default_factory=list)  # region: "10" .. "1099", Dutch postcodes
    cities: list[str] = Field(default_factory=list)  # matched case-insensitively
    languages: list[str] = Field(default_factory=list)
    holds: list[str] = Field(default_factory=list)  # holds every one of these products
    not_holds: list[str] = Field(default_factory=list)  # holds none of these

    @field_validator("postcode_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not (prefix.isdigit() and 1 <= len(prefix) <= 4):
                raise ValueError(f"postcode prefix {prefix!r} is not 1 to 4 digits")
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for language in value:
            if language not in ("nl", "en"):
                raise ValueError(f"language {language!r} is not nl or en")
        return value

    @field_validator("holds", "not_holds")
    @classmethod
    def _products(cls, value: list[str]) -> list[str]:
        for product in value:
            if not re.match(PRODUCT_PATTERN, product):
                raise ValueError(f"product {product!r} is not a product code (lower_case_with_underscores)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Audience:
        both = set(self.holds) & set(self.not_holds)
        if both:
            raise ValueError(f"{sorted(both)} is in both holds and not_holds: nobody can match")
        return self


class Budget(Strict):
    """Messages (contacts), not candidates: the control group costs nothing."""

    daily: int | None = Field(None, ge=1)
    total: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Budget:
        if self.daily and self.total and self.daily > self.total:
            raise ValueError(f"daily budget {self.daily} is larger than the total budget {self.total}")
        return self


class Variant(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    percent: float = Field(gt=0, le=100)
    templates: dict[ChannelName, str] = Field(default_factory=dict)  # channel -> template name


class Campaign(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    owner: str = Field(min_length=1, max_length=100)
    description: str = ""
    draft: bool = False  # a draft never runs, whatever its window
    offers: list[str] = Field(min_length=1)
    window: Window
    audience: Audience = Field(default_factory=Audience)
    channels: list[ChannelName] | None = None  # a narrowing (and ordering) of each offer's channels
    send_times: dict[ChannelName, time] = Field(default_factory=dict)  # customer's local time
    budget: Budget = Field(default_factory=Budget)
    variants: list[Variant] = Field(default_factory=lambda: [Variant(name="A", percent=100)], min_length=1)
    holdout_percent: float = Field(10, ge=0, le=50)
    priority: int = Field(50, ge=1, le=100)
    attribution_days: int = Field(30, ge=1, le=365)

    @field_validator("offers")
    @classmethod
    def _unique_offers(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an offer is listed twice")
        return value

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        if value is not None and not value:
            raise ValueError("at least one channel (or leave channels out to use the offers' own)")
        return value

    @field_validator("variants")
    @classmethod
    def _split(cls, value: list[Variant]) -> list[Variant]:
        names = [v.name for v in value]
        if len(set(names)) != len(names):
            raise ValueError("a variant name is used twice")
        total = sum(v.percent for v in value)
        if abs(total - 100) > 1e-9:
            raise ValueError(f"variant percentages add up to {total:g}, not 100")
        return value

    # -- what the rules need ----------------------------------------------------------------
    def state_on(self, day: date, paused: bool = False) -> str:
        if self.draft:
            return "draft"
        if day < self.window.start:
            return "scheduled"
        if day > self.window.end:
            return "finished"
        return "paused" if paused else "active"

    def runs_on(self, day: date) -> bool:
        """Makes candidates on ``day`` (a paused campaign does too: its messages wait, see gate)."""
        return not self.draft and self.window.contains(day)

    def channels_for(self, offer_channels: list[str]) -> list[str]:
        """The campaign's channel order, limited to what the offer allows."""
        if self.channels is None:
            return list(offer_channels)
        return [c for c in self.channels if c in offer_channels]

    def variant_template(self, variant: str, channel: str) -> str | None:
        for v in self.variants:
            if v.name == variant:
                return v.templates.get(channel)
        return None

    @property
    def holdout(self) -> float:
        return self.holdout_percent / 100
