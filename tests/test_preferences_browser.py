"""The preference centre in headless Debian Chromium against a real uvicorn: keyboard only, every
control labelled, no axe-core violations (WCAG 2.1 A/AA), in nl and en; a screenshot for docs/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from outreach import preferences
from outreach.config import Settings
from outreach.db import make_engine, session_scope
from outreach.models import ConsentEvent
from tests.factories import add_customers, customer
from tests.test_calls_browser import ARGS, CHROMIUM, _ensure_chromium
from tests.webhook_kit import running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SECRET = "preference-browser-secret-0123456789"
AXE_DIR = Path(__file__).parent / "axe"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
REPO = Path(__file__).resolve().parent.parent


def _axe_source() -> str:
    """axe-core from the npm registry (tests/axe/package.json), installed on first use."""
    if not AXE.exists() and shutil.which("npm"):
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=AXE_DIR,
            capture_output=True,
            check=False,
            timeout=300,
        )
    if not AXE.exists():
        pytest.skip("axe-core could not be installed with npm")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser():
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(sqlite_url):
    engine = make_engine(sqlite_url)
    add_customers(engine, customer("C1"))

    def settings_for(base: str) -> Settings:
        return Settings(database_url=sqlite_url, public_url=base, unsubscribe_secret=SECRET)

    with running_app(settings_for) as (base, _port):
        yield base, engine, settings_for(base)
    engine.dispose()


def _violations(page, axe: str) -> list[str]:
    page.add_script_tag(content=axe)
    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", tags)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result["violations"]]


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_page_is_accessible_and_works_by_keyboard(browser, site, lang):
    base, engine, settings = site
    axe = _axe_source()
    # axe is injected as an inline script, which the page's CSP rightly forbids: bypass it here
    context = browser.new_context(locale="nl-NL" if lang == "nl" else "en-GB", bypass_csp=True)
    page = context.new_page()
    page.goto(f"{preferences.preference_url(settings, 'C1')}?lang={lang}")
    assert _violations(page, axe) == []
    # every checkbox is found by its visible label
    label = "Geen enkele aanbieding meer, via geen enkel kanaal" if lang == "nl" else "No offers at all"
    assert page.get_by_label(label).count() == 1
    # keyboard only: Tab to the e-mail checkbox, Space ticks it, Tab to the button, Enter sends
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "scope-email":
            break
    assert page.evaluate("document.activeElement.id") == "scope-email"
    page.keyboard.press("Space")
    for _ in range(20):
        if page.evaluate("document.activeElement.tagName") == "BUTTON":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("[role=status]")
    assert _violations(page, axe) == []
    with session_scope(engine) as session:
        assert session.scalars(select(ConsentEvent.scope)).all() == ["email"]
    context.close()


def test_page_works_under_its_own_csp(browser, site):
    """With the CSP enforced: the stylesheet loads, nothing is blocked, the focus ring shows."""
    base, engine, settings = site
    context = browser.new_context(locale="nl-NL", viewport={"width": 720, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.goto(preferences.preference_url(settings, "C1"))
    button = page.locator("button")
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(11, 83, 148)"
    page.keyboard.press("Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    assert problems == []
    folder = os.environ.get("OUTREACH_SCREENSHOTS")
    if folder:
        page.keyboard.press("Tab")
        page.screenshot(path=str(Path(folder) / "preferences.png"), full_page=True)
    context.close()
