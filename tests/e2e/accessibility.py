"""Accessibility checks for the browser tests: axe-core (the npm package, installed under
node_modules/ by `make install`) run on the page as the user sees it.

axe is evaluated through the DevTools protocol, which the page's Content-Security-Policy does
not govern: the journeys keep the real CSP on while axe looks at the pages.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import PHONE, screenshot

AXE_PATH = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
# The rules whose answer changes with the width (tables that scroll, targets that shrink),
# run again at phone width; the others give the same answer at any width.
PHONE_RULES = ["scrollable-region-focusable", "target-size"]
NEXT_FRAME = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
RUN_AXE = """async (rules) => {
  const options = { resultTypes: ["violations"] };
  if (rules) options.runOnly = { type: "rule", values: rules };
  const results = await window.axe.run(document, options);
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map((node) => node.target.join(" ")),
  }));
}"""


@cache
def axe_source() -> str:
    if not AXE_PATH.exists():
        pytest.fail(
            f"axe-core is needed for the accessibility checks: run `make install` ({AXE_PATH})"
        )
    return AXE_PATH.read_text()


def axe_violations(page: Page, rules: list[str] | None = None) -> list[dict[str, Any]]:
    """The axe-core violations on the page as it is now: of every rule, or of `rules`."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(axe_source())
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE, rules)
    return violations


def assert_accessible(page: Page, name: str) -> None:
    """Fail when axe-core finds a serious or critical violation on the page, at its width and
    (for the rules that depend on it) at phone width."""
    violations = axe_violations(page)
    original = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.evaluate(NEXT_FRAME)  # the page has handled its resize event
        violations += axe_violations(page, PHONE_RULES)
    finally:
        if original is not None:
            page.set_viewport_size(original)
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"{name} ({page.url}) has accessibility violations:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'][:5])}"
        for v in blocking
    )


def check_page(page: Page, name: str) -> None:
    """The check every journey makes of each page it visits: screenshots at desktop and phone
    width, then axe-core, which must find nothing serious or critical."""
    screenshot(page, name)
    assert_accessible(page, name)
