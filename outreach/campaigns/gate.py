"""The dispatcher's campaign check, run before each batch is claimed.

- A message of a paused campaign is not claimed: it stays ``planned`` and goes out with the first
  batch after ``outreach campaigns resume``. The hold is recorded (``campaign_events``, kind
  ``held_back``, with the count and the worker) so the run shows that a pause held messages back.
- A message of a campaign variant is rendered with the variant's template for its channel.

One query per batch; messages that belong to no campaign pass untouched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from outreach.campaigns import state
from outreach.campaigns.tables import CampaignAssignment, CampaignRecord
from outreach.db import session_scope
from outreach.models import Decision, Message


@dataclass
class GateResult:
    held: dict[int, str] = field(default_factory=dict)  # message id -> its paused campaign
    templates: dict[int, str] = field(default_factory=dict)  # message id -> the variant's template

    def sendable(self, ids: Sequence[int]) -> list[int]:
        return [i for i in ids if i not in self.held]


def check(engine: Engine, message_ids: Sequence[int], worker: str) -> GateResult:
    """Which of ``message_ids`` wait for a paused campaign, and which templates variants use."""
    result = GateResult()
    ids = list(message_ids)
    with session_scope(engine) as session:
        for start in range(0, len(ids), 900):
            rows = session.execute(
                select(
                    Message.id,
                    CampaignAssignment.campaign,
                    CampaignAssignment.template,
                    CampaignRecord.paused,
                )
                .join(Decision, Decision.id == Message.decision_id)
                .join(CampaignAssignment, CampaignAssignment.candidate_id == Decision.candidate_id)
                .join(CampaignRecord, CampaignRecord.name == CampaignAssignment.campaign)
                .where(Message.id.in_(ids[start : start + 900]))
            ).all()
            for message_id, campaign, template, paused in rows:
                if paused:
                    result.held[message_id] = campaign
                if template:
                    result.templates[message_id] = template
    if result.held:
        state.record_held_back(engine, dict(Counter(result.held.values())), f"batch of {worker}")
    return result
