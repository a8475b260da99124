"""The legitimate-interest assessment each offer carries in offers.yaml.

Contacting customers without asking first rests on Art. 6(1)(f) GDPR; the bank must be able to show,
per purpose, the three-part test (purpose, necessity, balancing) and its safeguards. The record sits
next to the offer it justifies so the two change together, and the compliance report prints it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10)]
Item = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3)]


class LegitimateInterest(BaseModel):
    """One offer's assessment; every field is required and none may be a placeholder."""

    model_config = ConfigDict(extra="forbid")
    purpose: Text  # what the bank wants to achieve with this contact
    payment_data: list[Item] = Field(min_length=1)  # which payment data the offer is derived from
    necessity: Text  # why that data and this contact are needed for the purpose
    balancing: Text  # why the customer's interests do not override the bank's
    safeguards: list[Item] = Field(min_length=1)  # opt-out by default, caps, suppression lists, ...
    retention: Text  # how long the data used and the messages are kept

    def as_rows(self) -> list[tuple[str, str]]:
        """Label and text per field, in the order a privacy officer reads them."""
        return [
            ("Purpose", self.purpose),
            ("Payment data used", "; ".join(self.payment_data)),
            ("Necessity", self.necessity),
            ("Balancing of interests", self.balancing),
            ("Safeguards", "; ".join(self.safeguards)),
            ("Retention", self.retention),
        ]
