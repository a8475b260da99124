"""The configuration files tests read: copies under tests/fixtures, never the operator's working files.

Marketing edits `offers.yaml` and `campaigns/` in the repository root; a test that read those would break
(or silently change meaning) when a marketer adds a campaign. tests/test_shipped_config.py checks that the
shipped files stay valid.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OFFERS_FILE = FIXTURES / "offers.yaml"
CAMPAIGNS_DIR = FIXTURES / "campaigns"
