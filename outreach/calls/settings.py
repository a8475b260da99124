"""Call-centre knobs from the environment (OUTREACH_CALLS_*); calling hours come from offers.yaml."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CallSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTREACH_CALLS_", env_file=".env", extra="ignore")

    max_attempts: int = Field(3, ge=1, le=10)  # calls per task per day, no-answer retries included
    retry_minutes: int = Field(60, ge=1, le=600)  # wait after "no answer" before the next try
    claim_grace_minutes: int = Field(60, ge=0)  # a call in hand at window end may still be finished
    holiday_country: str = "NL"


@lru_cache
def get_call_settings() -> CallSettings:
    return CallSettings()
