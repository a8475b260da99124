"""Call-centre tables. Imported at the end of ``outreach.models`` so they share its metadata."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from outreach.models import Base, BigId

TASK_STATUSES = ("open", "claimed", "done", "expired", "cancelled")
ROLES = ("agent", "supervisor")


class Team(Base):
    """A call-centre team; ``language`` None means it takes customers of any language."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str | None] = mapped_column(String(2))
    calls_per_day: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    role: Mapped[str] = mapped_column(String(12), default="agent")  # agent | supervisor
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # rotated at sign-out: every session cookie carrying the old value stops working
    session_nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # brute-force guard, in the database so every web worker sees the same count
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CallTask(Base):
    """One call to make, for one ``call`` message of the ledger (``sent`` there means "task created")."""

    __tablename__ = "call_tasks"
    __table_args__ = (Index("ix_call_tasks_queue", "team_id", "call_date", "status", "priority"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    run_date: Mapped[date] = mapped_column(Date, index=True)  # the ledger day of the message
    call_date: Mapped[date] = mapped_column(Date, index=True)  # the customer's calling day
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    offer_code: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str | None] = mapped_column(String(64))  # for topic opt-outs checked at claim time
    priority: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    trigger: Mapped[str | None] = mapped_column(String(64))
    trigger_text: Mapped[str | None] = mapped_column(String(200))  # plain words for the agent
    status: Mapped[str] = mapped_column(String(12))  # open | claimed | done | expired | cancelled
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the task may be claimed in [next_attempt_at, window_end): calling hours in the customer's zone
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))
    last_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CallAttempt(Base):
    """Every call an agent made and what came of it (a task with retries has several)."""

    __tablename__ = "call_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("call_tasks.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallLead(Base):
    """An interested customer: a follow-up for an adviser."""

    __tablename__ = "call_leads"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("call_tasks.id"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    offer_code: Mapped[str] = mapped_column(String(40))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    status: Mapped[str] = mapped_column(String(12), default="new")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
