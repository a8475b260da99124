"""SMS segment counting: GSM-7 vs UCS-2, single vs concatenated, escapes and surrogate pairs."""

from __future__ import annotations

import pytest

from outreach.sms_segments import count_segments


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        # € [ ] { } | ^ ~ \ take an escape septet: 80 euro signs are 160 septets
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 80 + "a", "GSM-7", 161, 2),
        # an escape pair never straddles segments: 152 + € does not fit in 153, so it moves on
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("Ça va? éèùìò ÄÖÑÜ äöñüà ß Æ ¿¡ §", "GSM-7", 32, 1),
        # one character outside GSM 03.38 makes the whole message UCS-2
        ("ë" + "a" * 69, "UCS-2", 70, 1),
        ("ë" + "a" * 70, "UCS-2", 71, 2),
        ("ë" + "a" * 133, "UCS-2", 134, 2),
        ("ë" + "a" * 134, "UCS-2", 135, 3),
        ("“quoted”", "UCS-2", 8, 1),
        # an emoji is a surrogate pair: two UTF-16 units
        ("😀", "UCS-2", 2, 1),
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 35 + "a", "UCS-2", 71, 2),
        # 66 units + an emoji: the pair is not split, so the emoji starts segment two
        ("a" * 66 + "😀" + "a" * 4, "UCS-2", 72, 2),
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3),
    ],
)
def test_segments(text, encoding, units, segments):
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_emoji_turns_a_one_segment_gsm_message_into_three_ucs2_segments():
    text = (
        "Beste Anne, uw nieuwe spaarrekening staat klaar. Bekijk hem in de app. Geen sms meer? Antwoord STOP"
    )
    assert count_segments(text).segments == 1
    with_emoji = text + " 🎉"
    count = count_segments(with_emoji)
    assert count.encoding == "UCS-2"
    assert count.segments == 2
    assert count.non_gsm == "🎉"
    assert count_segments(text + " " + text + " 🎉").segments == 4


def test_describe_names_the_characters_that_forced_ucs2():
    assert "'ë'" in count_segments("Zoë, hallo").describe()
    assert "GSM-7" in count_segments("Hallo").describe()
