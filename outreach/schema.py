"""Every table of Outreach on one metadata: what Alembic migrates and compares.

The core's tables live in ``outreach.models``; self-contained areas keep theirs beside their code
(``outreach.calls.models``, ``outreach.campaigns.tables``, ``outreach.live.tables``). Importing
them here, in one place, registers them on ``Base.metadata`` without ``models`` importing upward
into those areas.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from outreach.calls import models as calls_tables
from outreach.campaigns import tables as campaigns_tables
from outreach.live import tables as live_tables
from outreach.models import Base

AREAS = (calls_tables, campaigns_tables, live_tables)  # imported for their side effect: their tables on Base
metadata: MetaData = Base.metadata

__all__ = ["AREAS", "metadata"]
