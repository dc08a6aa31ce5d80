"""An accessibility audit in the page: axe-core (MPL-2.0), fetched from the npm registry by
scripts/setup.sh at the version pinned there (checked against its sha512, kept in .build/,
never committed, never from a CDN), run in the page through Playwright's evaluate (which
the pages' Content-Security-Policy does not govern). A violation of impact "serious" or
"critical" fails the test, with each offending element named."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
FAIL_ON = ("serious", "critical")


def axe_version() -> str:
    m = re.search(r"^AXE_VERSION=(\S+)$", (ROOT / "scripts" / "setup.sh").read_text(), re.M)
    assert m is not None, "scripts/setup.sh pins AXE_VERSION"
    return m.group(1)


@cache
def axe_source() -> str:
    path = ROOT / ".build" / f"axe-core-{axe_version()}" / "package" / "axe.min.js"
    if not path.exists():
        raise AssertionError(f"{path} is missing: run scripts/setup.sh (fetches axe-core)")
    return path.read_text(encoding="utf-8")


RUN = """async () => {
  const r = await axe.run(document, { resultTypes: ["violations"] });
  return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary) }));
}"""


def violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (all impacts)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found: list[dict[str, Any]] = page.evaluate(RUN)
    return found


def audit(page: Page, name: str) -> list[dict[str, Any]]:
    """Fail on serious or critical violations; return the lesser ones (for the report)."""
    found = violations(page)
    bad = [v for v in found if v["impact"] in FAIL_ON]
    assert not bad, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} -> {v['nodes']}" for v in bad
    )
    return [v for v in found if v["impact"] not in FAIL_ON]
