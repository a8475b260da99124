"""SMS length in segments, the way carriers bill it (3GPP TS 23.038).

A message whose every character is in the GSM 03.38 alphabet goes as GSM-7: 160 septets in one
segment, 153 per segment once it is split (the rest carries the concatenation header). Characters
from the extension table (``€ [ ] { } | ^ ~ \\`` and form feed) take an escape septet, so they
count double, and an escape pair is never split across segments. One character outside the
alphabet (``ë``, a curly quote, an emoji) turns the whole message into UCS-2: 70 UTF-16 code units
in one segment, 67 per segment when split; an emoji outside the BMP is two units (a surrogate pair)
and is never split either.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    non_gsm: str = ""  # the characters that forced UCS-2, in order of appearance, once each

    def describe(self) -> str:
        unit = "septets" if self.encoding == "GSM-7" else "UTF-16 units"
        why = f"; not in GSM-7: {' '.join(repr(c) for c in self.non_gsm)}" if self.non_gsm else ""
        return f"{self.segments} segment(s), {self.encoding}, {self.units} {unit}{why}"


def _costs(text: str) -> tuple[str, list[int], str]:
    """Encoding, the cost of each character in units, and the characters that are not GSM-7."""
    non_gsm = "".join(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION))
    if not non_gsm:
        return "GSM-7", [2 if c in GSM7_EXTENSION else 1 for c in text], ""
    return "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in text], non_gsm


def _pack(costs: list[int], per_segment: int) -> int:
    """Segments needed when no character (escape pair, surrogate pair) may straddle a boundary."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            segments, used = segments + 1, 0
        used += cost
    return segments


def count_segments(text: str) -> SegmentCount:
    encoding, costs, non_gsm = _costs(text)
    units = sum(costs)
    if units == 0:
        return SegmentCount(encoding, 0, 0, non_gsm)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    segments = 1 if units <= single else _pack(costs, multi)
    return SegmentCount(encoding, units, segments, non_gsm)
