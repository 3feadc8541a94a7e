"""Take the README's screenshots of relay studio: ``python -m tests.studio_screenshots [OUT_DIR]``.

Runs studio over a scratch copy of the bundled presets and drives it in headless
Chromium the way the browser tests do, writing ``docs/studio-*.png``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from relay.studio import StudioServer, Workspace
from tests.paths import ROOT
from tests.studio_helpers import CHROMIUM, CHROMIUM_FLAGS, chromium_missing, make_workspace
from tests.test_studio_browser import choose_event, edit_line

__all__ = ["main"]


def shoot(page: Any, out: Path, name: str) -> None:
    page.wait_for_timeout(150)  # let the last paint settle
    page.screenshot(path=str(out / f"studio-{name}.png"))
    print(f"wrote {out / f'studio-{name}.png'}")


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="relay-studio-shots-") as scratch, sync_playwright() as playwright:
        root = Path(scratch)
        make_workspace(root)
        os.chdir(root)  # paths on the page read as the author sees them: presets/mailjet/preset.yaml
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        with StudioServer(Workspace(root / "presets", cwd=root)) as server:
            page = browser.new_page(viewport={"width": 1440, "height": 860}, device_scale_factor=1)
            page.goto(f"{server.url}#mailjet")
            page.wait_for_selector("#status[data-state=good]")
            # 1. The seed example: decision, the exact request, copy as curl.
            choose_event(page, "mailjet-signed-up.json")
            page.locator("#summary", has_text="consent_granted").wait_for()
            page.locator(".req-single").first.get_by_role("button", name="Copy as curl").click()
            page.locator("#summary a.line").click()  # the mapping's line link scrolls the editor to it
            shoot(page, out, "request")
            # 2. The trace and where each field came from.
            page.get_by_role("tab", name="Trace").click()
            shoot(page, out, "trace")
            page.get_by_role("tab", name="Fields").click()
            shoot(page, out, "fields")
            # 3. A mistyped key: located as `relay validate` reports it.
            edit_line(page, "order_by: email", "Home", "Control+Shift+ArrowRight", "type:ordr_by")
            page.wait_for_selector("#status[data-state=bad]")
            page.locator(".cm-lintRange-error").first.hover()
            page.wait_for_selector(".cm-tooltip-lint", timeout=5000)
            shoot(page, out, "error")
            edit_line(page, "ordr_by: email", "Home", "Control+Shift+ArrowRight", "type:order_by")
            page.wait_for_selector("#status[data-state=good]")
            # 4. A golden case that no longer matches, with Accept as golden.
            choose_event(page, "seed_signed_up")
            page.get_by_role("tab", name="Golden").click()
            edit_line(page, 'Name: "{{ fields.name }}"', "End", *["ArrowLeft"] * 4, "type: | upper")
            page.wait_for_selector("#golden-badge[data-ok=false]")
            shoot(page, out, "golden")
            # 5. Send to the fake: a 503, the wait, then delivered.
            page.keyboard.press("Control+z")
            page.wait_for_selector("#golden-badge[data-ok=true]")
            choose_event(page, "mailjet-signed-up.json")
            page.get_by_role("tab", name="Send to fake").click()
            page.select_option("#fault", "503-once")
            page.locator("#send").click()
            page.locator("#send-result .exchange").nth(1).wait_for()
            shoot(page, out, "send")
        browser.close()


if __name__ == "__main__":
    missing = chromium_missing()
    if missing:
        sys.exit(f"cannot take screenshots: {missing}")
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs")
