"""relay studio in a real browser: headless Chromium (Debian's) driven by Playwright.

One browser for the session, one studio server on 127.0.0.1 over a scratch copy of
the presets, a fresh page per test. Skipped, with the reason, only where no
Chromium can be had; `.ci/run` installs it, so CI runs these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.studio import StudioServer, Workspace
from tests.studio_helpers import CHROMIUM, CHROMIUM_FLAGS, chromium_missing, make_workspace

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))

TIMEOUT = 15_000  # ms: generous for a shared 2-core machine; waits end as soon as the page is ready


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("studio")
    make_workspace(root)
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[StudioServer]:
    with StudioServer(Workspace(root / "presets", cwd=root)) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any, server: StudioServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # A 409 is how the server refuses a save the author must confirm: expected, not a fault.
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if message.type == "error" and "409 (Conflict)" not in message.text else None
        ),
    )
    page.goto(f"{server.url}#mailjet")
    page.wait_for_selector("#status[data-state=good]")
    yield page
    context.close()
    assert not problems, problems


def edit_line(page: Any, contains: str, *keys: str) -> None:
    """Find ``contains`` with the editor's own search (Ctrl-F), as an author would, then press
    ``keys`` on that line (``"type:..."`` types text). The editor draws only the lines in view,
    so searching is how to reach any line."""
    page.locator(".cm-content").click(position={"x": 4, "y": 4})
    page.keyboard.press("Control+Home")
    page.keyboard.press("Control+f")
    field = page.locator(".cm-search input[name=search]")
    field.press_sequentially(contains)  # typed: the search panel reads key events, not a filled value
    field.press("Enter")
    page.keyboard.press("Escape")
    for key in keys:
        if key.startswith("type:"):
            page.keyboard.type(key[5:])
        else:
            page.keyboard.press(key)


def choose_event(page: Any, label: str) -> None:
    value = page.locator("#event option", has_text=label).first.get_attribute("value")
    page.select_option("#event", value)


def test_opening_a_preset_shows_its_yaml_highlighted(page: Any, root: Path) -> None:
    assert page.locator("#preset").input_value() == "mailjet"
    assert page.locator("#file").inner_text().endswith("presets/mailjet/preset.yaml")
    first_lines = page.locator(".cm-line").all_inner_texts()[:20]
    assert "metadata:" in first_lines
    # YAML highlighting: keys and comments are styled spans, not plain text.
    colours = page.eval_on_selector_all(
        ".cm-line span", "spans => new Set(spans.map(s => getComputedStyle(s).color)).size"
    )
    assert colours >= 3
    assert page.locator("#status").inner_text() == "✓ valid"
    assert page.locator("#summary").inner_text().startswith("SEND")


def test_a_broken_key_is_reported_at_its_line_and_fixing_it_clears_it(page: Any, root: Path) -> None:
    text = (root / "presets" / "mailjet" / "preset.yaml").read_text()
    line = text.splitlines().index("    match: {type: track, event: Signed Up}") + 1
    edit_line(page, "match: {type: track, event: Signed Up}", "Home", "Control+Shift+ArrowRight", "type:mtch")
    page.wait_for_selector("#status[data-state=bad]")
    problem = page.locator("#problems-list li").first
    assert problem.locator(".where").inner_text() == f"{line}:5"
    assert re.fullmatch(
        rf".*presets/mailjet/preset\.yaml:{line}:5: /mappings/0/mtch: unknown key 'mtch' "
        r"\(hint: did you mean 'match'\?\)",
        problem.locator(".text").inner_text(),
    )
    # The editor marks the key itself, on that line, and offers the same message.
    marked = page.locator(".cm-lintRange-error")
    assert marked.first.inner_text() == "mtch"
    assert page.locator(".cm-line", has=marked).inner_text().strip() == "mtch: {type: track, event: Signed Up}"
    assert page.locator(".cm-gutter-lint .cm-lint-marker-error").count() == 1
    assert "stale" in page.locator("body").get_attribute("class")
    # Fix it: the error goes away as the author types.
    edit_line(page, "mtch: {type: track, event: Signed Up}", "Home", "Control+Shift+ArrowRight", "type:match")
    page.wait_for_selector("#status[data-state=good]")
    assert page.locator("#problems").is_hidden()
    assert page.locator(".cm-lintRange-error").count() == 0


def test_completion_offers_the_keys_the_schema_allows_here(page: Any) -> None:
    """Inside the first rule: the rule's keys from the schema, minus those it already has."""
    edit_line(page, "drop: event has no email address", "End", "Enter", "type:d")
    options = page.locator(".cm-tooltip-autocomplete li")
    # The list first shows every key, then narrows to the typed "d": wait for the narrowed one.
    page.wait_for_function(
        "() => { const first = document.querySelector('.cm-tooltip-autocomplete li');"
        " return first && first.innerText.includes('description'); }"
    )
    labels = [text.splitlines()[0] for text in options.all_inner_texts()]
    assert "description" in labels[0] and not {"when", "drop", "name"} & set(labels)
    # CodeMirror ignores Enter for its interactionDelay (75 ms) after the list changes.
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    assert page.locator(".cm-activeLine").inner_text() == "    description: "


def test_the_seed_example_shows_the_mailjet_body_headers_and_curl(page: Any) -> None:
    choose_event(page, "mailjet-signed-up.json")
    page.wait_for_selector("#settings option[value$='mailjet.settings.yaml']", state="attached")
    page.locator("#summary", has_text="consent_granted").wait_for()
    request = page.locator(".req-single[data-step=contact]")
    assert request.locator(".url").inner_text() == "https://api.mailjet.com/v3/REST/contactslist/10001/managecontact"
    bulk = page.locator(".req-batched[data-step=contact]")  # how a run with batching on sends it
    assert bulk.locator(".url").inner_text().endswith("/contactslist/10001/managemanycontacts")
    assert '"Email": "jane.doe@example.com"' in bulk.locator(".body-decoded").inner_text()
    assert request.locator(".method").inner_text() == "POST"
    body = request.locator(".body-decoded").inner_text()
    for line in (
        '"Email": "jane.doe@example.com"',
        '"Name": "Jane Doe"',
        '"Action": "addforce"',
        '"signup_method": "email"',
    ):
        assert line in body
    assert "Basic <redacted>" in request.locator("table.headers").inner_text()
    request.get_by_role("button", name="Raw").click()
    assert request.locator("pre.raw").inner_text().startswith('{"Email":"jane.doe@example.com","Name":"Jane Doe"')
    request.get_by_role("button", name="Copy as curl").click()
    curl = request.locator(".curl-text").inner_text()
    assert '-u "demo-public-key:${MAILJET_SECRET_KEY}"' in curl
    assert "demo-secret-key" not in page.content()  # the secret never reached the page
    page.get_by_role("tab", name="Trace").click()
    email_row = page.locator("table.selectors tr", has_text="email").first
    assert email_row.locator(".path.matched").inner_text() == "context.traits.email"
    page.get_by_role("tab", name="Fields").click()
    signup = page.locator("table.fields tr", has_text="properties.signup_method")
    assert "mapping signed_up" in signup.inner_text() and "{{ signup_method }}" in signup.inner_text()


def test_accept_as_golden_rewrites_the_case_on_disk(page: Any, root: Path) -> None:
    case_file = root / "presets" / "mailjet" / "golden" / "seed_signed_up.yaml"
    case_file.write_text("# seed 001; this comment must survive\n" + case_file.read_text(), encoding="utf-8")
    choose_event(page, "seed_signed_up")
    page.get_by_role("tab", name="Golden").click()
    page.wait_for_selector("#golden-badge[data-ok=true]")
    edit_line(
        page, 'Name: "{{ fields.name }}"', "End", "ArrowLeft", "ArrowLeft", "ArrowLeft", "ArrowLeft", "type: | upper"
    )
    page.wait_for_selector("#golden-badge[data-ok=false]")
    diff = page.locator("pre.diff")
    assert diff.locator(".d-del", has_text='"Name": "Jane Doe"').count() == 1
    assert diff.locator(".d-add", has_text='"Name": "JANE DOE"').count() == 1
    page.locator("#accept").click()
    page.wait_for_selector("#golden-badge[data-ok=true]")
    assert "seed_signed_up.yaml" in page.locator("#accept-note").inner_text()
    written = case_file.read_text()
    assert written.startswith("# seed 001; this comment must survive\n")
    assert "      Name: JANE DOE\n" in written and "first_name: Jane\n" in written  # the inputs are untouched


def test_send_to_fake_shows_the_response_and_the_outcome(page: Any) -> None:
    choose_event(page, "mailjet-signed-up.json")
    page.locator("#summary", has_text="consent_granted").wait_for()
    page.get_by_role("tab", name="Send to fake").click()
    page.locator("#send").click()
    outcome = page.locator("#send-result .outcome")
    outcome.wait_for()
    assert outcome.inner_text().startswith("DELIVERED")
    assert "201" in page.locator(".exchange .status").first.inner_text()
    assert "jane.doe@example.com" in page.locator("table.state").inner_text()
    page.select_option("#fault", "503-once")
    page.locator("#send").click()
    page.locator("#send-result .exchange").nth(1).wait_for()
    assert re.search(r"retry in \d+\.\d\d s", page.locator(".exchange").first.inner_text())
    assert page.locator("#send-result .outcome").inner_text().startswith("DELIVERED")
    # A list the fake does not have: a dead letter, with the preset's hint.
    page.select_option("#fault", "none")
    value = page.locator("#settings option", has_text="wrong-list").get_attribute("value")
    page.select_option("#settings", value)
    page.locator("#send").click()
    page.wait_for_selector("#send-result .hint")
    assert page.locator("#send-result .outcome").inner_text().startswith("DEAD LETTER")
    assert "Contact list 99 does not exist" in page.locator("#send-result .hint").inner_text()


def test_save_writes_the_text_and_asks_before_replacing_a_valid_preset(page: Any, root: Path) -> None:
    path = root / "presets" / "mailjet" / "preset.yaml"
    edit_line(page, "backoff: {base: 0.5", "End", "type:   # tuned by hand")
    page.keyboard.press("Control+s")
    page.wait_for_selector("#banner[data-kind=good]")
    assert "  backoff: {base: 0.5, max: 30}   # tuned by hand\n" in path.read_text()
    assert page.locator("#dirty").is_hidden()
    saved = path.read_text()
    edit_line(page, "backoff: {base: 0.5", "Home", "Control+Shift+ArrowRight", "type:backof")
    page.wait_for_selector("#status[data-state=bad]")
    page.locator("#save").click()
    page.wait_for_selector("#banner[data-kind=warn]")
    assert "Not saved" in page.locator("#banner-text").inner_text()
    assert path.read_text() == saved  # nothing written without the explicit choice
    page.locator("#banner-yes").click()  # "Save anyway"
    page.wait_for_selector("#banner[data-kind=warn] >> text=Saved")
    assert "  backof: {base: 0.5, max: 30}   # tuned by hand" in path.read_text()
    path.write_text(saved, encoding="utf-8")  # leave the scratch preset valid for later tests
