"""The renderer: strict, sandboxed, Babel-formatted, nl fallback with a note."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from outreach.config import Offer
from outreach.rendering import Renderer, TemplateError, message_context

REPO = Path(__file__).resolve().parent.parent
OFFER = Offer(code="KIDS_SAVINGS", product="childrens_savings", topic="savings", priority=5, channels=["sms"])
CUSTOMER = {
    "customer_id": "C1",
    "first_name": "Zoë",
    "last_name": "de Vries",
    "language": "nl",
    "mobile": "+31612345678",
    "email": "zoe@example.nl",
    "street": "Kerkstraat",
    "city": "Utrecht",
}
TRIGGER = {"trigger": "child_benefit", "trigger_ref": "TX1", "score": 0.7}


def write(root: Path, files: dict[str, str]) -> Renderer:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Renderer(root)


def context(**trigger) -> dict:
    return message_context(CUSTOMER, OFFER, {**TRIGGER, **trigger}, date(2019, 6, 3), "https://x.test/u/1")


def test_money_and_dates_in_the_customers_locale(tmp_path):
    text = "{{ trigger.amount | money }} op {{ run_date | date }} "
    text += "({{ 0.021 | percent }}, {{ 1234567 | number }})"
    renderer = write(tmp_path, {"sms/t.nl.txt.j2": text, "sms/t.en.txt.j2": text, "letter/t.nl.txt.j2": text})
    ctx = context(amount=Decimal("1250"))
    assert renderer.render("sms", "t", "nl", ctx).body == "€ 1.250,00 op 3 juni 2019 (2,1%, 1.234.567)"
    assert renderer.render("sms", "t", "en", ctx).body == "€1,250.00 op 3 June 2019 (2.1%, 1,234,567)"
    # Babel's no-break space stays in a letter (no line break between € and the amount), not in an SMS
    assert renderer.render_part("letter/t.nl.txt.j2", {**ctx, "locale": "nl_NL"}).startswith(
        "€\u00a01.250,00"
    )


def test_undefined_variable_is_an_error_naming_file_and_line(tmp_path):
    renderer = write(
        tmp_path, {"sms/t.nl.txt.j2": "Beste {{ customer.first_name }},\n\n{{ customer.nickname }}"}
    )
    with pytest.raises(TemplateError) as caught:
        renderer.render("sms", "t", "nl", context())
    assert caught.value.line == 3
    assert caught.value.file.endswith("sms/t.nl.txt.j2")
    assert "nickname" in str(caught.value)


def test_error_in_an_included_partial_names_the_partial(tmp_path):
    renderer = write(
        tmp_path,
        {
            "email/t.nl.subject.j2": "Hallo",
            "email/t.nl.txt.j2": "Tekst\n{% include 'email/_foot.txt.j2' %}",
            "email/t.nl.html.j2": "<p>x</p>",
            "email/_foot.txt.j2": "regel 1\n{{ nope }}",
        },
    )
    with pytest.raises(TemplateError) as caught:
        renderer.render("email", "t", "nl", context())
    assert caught.value.file.endswith("email/_foot.txt.j2") and caught.value.line == 2


def test_empty_first_name_is_an_error_not_beste_comma(tmp_path):
    renderer = write(tmp_path, {"sms/t.nl.txt.j2": "Beste {{ customer.first_name }},"})
    ctx = message_context({**CUSTOMER, "first_name": "  "}, OFFER, TRIGGER, date(2019, 6, 3), None)
    with pytest.raises(TemplateError, match="first_name"):
        renderer.render("sms", "t", "nl", ctx)


def test_optional_values_are_guarded_with_is_defined(tmp_path):
    text = "{% if trigger.amount is defined %}{{ trigger.amount | money }}{% else %}geen bedrag{% endif %}"
    renderer = write(tmp_path, {"letter/t.nl.txt.j2": text, "letter/t.nl.subject.j2": "Betreft"})
    assert renderer.render("letter", "t", "nl", context()).body == "geen bedrag"
    assert renderer.render("letter", "t", "nl", context(amount=12.5)).body == "€\u00a012,50"


def test_a_bad_amount_names_the_line(tmp_path):
    renderer = write(tmp_path, {"sms/t.nl.txt.j2": "ok\n{{ 'veel' | money }}"})
    with pytest.raises(TemplateError) as caught:
        renderer.render("sms", "t", "nl", context())
    assert caught.value.line == 2 and "not an amount" in str(caught.value)


def test_context_leaves_contact_data_and_empty_values_out():
    ctx = message_context(CUSTOMER, OFFER, TRIGGER, date(2019, 6, 3), None)
    assert ctx["customer"]["full_name"] == "Zoë de Vries"
    assert (
        "mobile" not in ctx["customer"] and "email" not in ctx["customer"] and "street" not in ctx["customer"]
    )
    assert "unsubscribe_url" not in ctx  # an email template using it fails instead of printing "None"
    assert ctx["trigger"] == {"kind": "child_benefit", "ref": "TX1", "score": 0.7}


def test_sandbox_blocks_python_internals(tmp_path):
    renderer = write(tmp_path, {"sms/t.nl.txt.j2": "{{ customer.__class__.__mro__ }}"})
    with pytest.raises(TemplateError, match="unsafe|SecurityError|has no attribute"):
        renderer.render("sms", "t", "nl", context())
    renderer = write(tmp_path, {"sms/u.nl.txt.j2": "{% set _ = customer.update({'first_name': 'x'}) %}"})
    with pytest.raises(TemplateError):
        renderer.render("sms", "u", "nl", context())


def test_missing_language_falls_back_to_nl_with_a_note(tmp_path):
    renderer = write(tmp_path, {"sms/t.nl.txt.j2": "Hallo {{ customer.first_name }} ({{ language }})"})
    rendered = renderer.render("sms", "t", "en", context())
    assert rendered.body == "Hallo Zoë (nl)"
    assert rendered.language == "nl"
    assert rendered.note == "language en missing for sms/t, fell back to nl"
    assert renderer.render("sms", "t", "nl", context()).note is None


def test_no_template_at_all_names_the_expected_file(tmp_path):
    renderer = write(tmp_path, {"sms/other.nl.txt.j2": "x"})
    with pytest.raises(TemplateError, match=r"sms/t\.nl\.txt\.j2"):
        renderer.render("sms", "t", "en", context())


def test_email_without_plain_text_is_an_error(tmp_path):
    renderer = write(tmp_path, {"email/t.nl.subject.j2": "Onderwerp", "email/t.nl.html.j2": "<p>x</p>"})
    with pytest.raises(TemplateError, match=r"email/t\.nl\.txt\.j2"):
        renderer.render("email", "t", "nl", context())


def test_html_is_escaped_text_is_not(tmp_path):
    renderer = write(
        tmp_path,
        {
            "email/t.nl.subject.j2": "Voor {{ customer.last_name }}",
            "email/t.nl.txt.j2": "{{ customer.last_name }}",
            "email/t.nl.html.j2": "<p>{{ customer.last_name }}</p>",
        },
    )
    ctx = message_context({**CUSTOMER, "last_name": "<b>&Co</b>"}, OFFER, TRIGGER, date(2019, 6, 3), None)
    rendered = renderer.render("email", "t", "nl", ctx)
    assert rendered.html == "<p>&lt;b&gt;&amp;Co&lt;/b&gt;</p>"
    assert rendered.body == "<b>&Co</b>"


def test_sms_gets_plain_spaces_so_an_amount_does_not_force_ucs2(tmp_path):
    renderer = write(tmp_path, {"sms/t.nl.txt.j2": "{{ 25 | money }}"})
    assert renderer.render("sms", "t", "nl", context()).body == "€ 25,00"


def test_repo_templates_render_and_digest_is_stable():
    renderer = Renderer(REPO / "templates")
    first = renderer.render("letter", "kids_savings", "nl", context())
    again = Renderer(REPO / "templates").render("letter", "kids_savings", "nl", context())
    assert first == again and len(first.template_digest) == 16
    assert first.subject and "Beste Zoë," in first.body
