"""The reason-code set is documented: docs/reason-codes.md names every code the engine can emit."""

import re
from pathlib import Path

from outreach.policy.engine import REASONS, RULES

DOC = Path(__file__).resolve().parent.parent / "docs" / "reason-codes.md"


def test_every_reason_code_is_documented_and_every_rule_code_exists():
    documented = set(re.findall(r"`([a-z_0-9]+)`", DOC.read_text()))
    assert set(REASONS) <= documented, set(REASONS) - documented
    for rule in RULES:
        for code in rule.code.split("|"):
            assert code == "suppressed_*" or code in REASONS, code
