"""One real ``tarcza serve`` and one headless Chromium for the console's browser tests.

The server runs on a free port over a throwaway data directory (SQLite), seeded before it
starts: synthetic demonstration data (``tarcza demo seed``: subjects, debts, contacts the
firewall allowed and refused, a recording), three subjects of our own whose values the tests
know, and people with roles. The tests then drive the console in Chromium
(``/usr/bin/chromium``, Playwright's sync API) and check what they see against the data
directory (audit log, requests) read from this process.

Chromium is a Debian package installed by ``.ci/run``; without it the tests skip locally and
fail in CI (``CI=true``). Screenshots of the main pages go to ``build/test-artifacts/console/``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.serving import tarcza_serve

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "console"
PASSWORD = "correct horse battery staple"
IN_CI = os.environ.get("CI") == "true"

A11Y_CHECK = """() => {
  const out = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const label = el.id && document.querySelector(`label[for="${el.id}"]`);
    if (!label && !el.getAttribute('aria-label') && !el.closest('label')) out.push('no label: ' + (el.name || el.id));
    for (const id of (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean)) {
      if (!document.getElementById(id)) out.push('aria-describedby names a missing element: ' + id);
    }
  }
  for (const el of document.querySelectorAll('[aria-invalid="true"]')) {
    const ids = (el.getAttribute('aria-describedby') || '').split(/\\s+/);
    if (!ids.some(id => id.endsWith('-error') && document.getElementById(id))) out.push('error not linked: ' + el.id);
  }
  if (!document.querySelector('a.skip-link[href="#main"]') || !document.getElementById('main')) out.push('skip link');
  if (!['pl', 'en'].includes(document.documentElement.lang)) out.push('lang: ' + document.documentElement.lang);
  if (document.querySelector('style, [style]')) out.push('inline style');
  for (const s of document.querySelectorAll('script')) { if (!s.src) out.push('inline script'); }
  for (const img of document.querySelectorAll('img')) { if (!img.getAttribute('alt')) out.push('img without alt'); }
  for (const svg of document.querySelectorAll('svg')) {
    if (!svg.querySelector('title') || !svg.querySelector('desc')) out.push('svg without title and desc');
  }
  return out;
}"""


def chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    if IN_CI:
        pytest.fail(f"Chromium is required in CI but {CHROMIUM} is missing (Debian package chromium, .ci/run)")
    pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium); the console's browser tests need it")


# -- people and their authenticator apps -------------------------------------------------------------


@dataclass
class Person:
    """A user with an authenticator: ``code()`` gives the next code the server has not accepted yet."""

    username: str
    roles: list[str]
    secret: str | None = None
    user_id: str = ""
    last_step: int = -1

    def code(self) -> str:
        """A TOTP code for a time-step newer than any used (RFC 6238, window of one step each side)."""
        assert self.secret is not None
        deadline = time.monotonic() + 70
        while True:
            current = int(time.time()) // 30
            for step in (current, current + 1):
                if step > self.last_step:
                    self.last_step = step
                    return str(pyotp.TOTP(self.secret).at(step * 30))
            if time.monotonic() > deadline:
                raise AssertionError("no fresh TOTP step within 70 s")
            time.sleep(0.5)  # waiting for the clock's next 30-second step, not for the server


@dataclass
class Subject:
    token: str
    fields: dict[str, Any]


@dataclass
class Console:
    base_url: str
    data_dir: Path
    database_url: str
    people: dict[str, Person] = field(default_factory=dict)
    subjects: dict[str, Subject] = field(default_factory=dict)
    _runtime: Any = None

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def runtime(self) -> Any:
        """A runtime of this process on the server's database, for reading what the server did."""
        if self._runtime is None:
            from api.runtime import Runtime
            from core.settings import load_settings

            self._runtime = Runtime(load_settings(data_dir=self.data_dir, database_url=self.database_url))
        return self._runtime


def _add_person(runtime: Any, person: Person, *, enrol: bool = True) -> None:
    from api.auth import identity_transaction
    from api.cli.identity import operator_actor

    with identity_transaction(runtime) as identity:
        info = identity.users.create(person.username, PASSWORD, person.roles, actor=operator_actor())
        person.user_id = info.id
        if enrol:
            person.secret = identity.factors.begin(identity.users.by_username(person.username)).secret
    if enrol:
        assert person.secret is not None
        step = int(time.time()) // 30 - 1  # the previous step, so that the current one is left for a log-in
        with identity_transaction(runtime) as identity:
            user = identity.users.by_username(person.username)
            assert identity.factors.confirm(user, pyotp.TOTP(person.secret).at(step * 30)).ok
        person.last_step = step


def _seed(console: Console) -> None:
    """Demonstration data through the real CLI, then our own subjects and people through the services."""
    from api.cli.common import initialise_runtime
    from api.demo_data import demo_person
    from api.runtime import Runtime
    from audit.events import ActorKind
    from contacts.debts import NewDebt
    from contacts.service import ContactRecord, ContactRefusedError
    from core.settings import load_settings
    from identity.principal import Principal

    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env.update(TARCZA_DATA_DIR=str(console.data_dir), TARCZA_DATABASE_URL=console.database_url)
    subprocess.run([sys.executable, "-m", "api", "init"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "api", "demo", "seed", "--subjects", "8", "--recordings", "1", "--json"],
                   env=env, check=True, capture_output=True, timeout=300)
    runtime = Runtime(load_settings(data_dir=console.data_dir, database_url=console.database_url))
    try:
        initialise_runtime(runtime)
        seeder = Principal(id="console-test-seeder", kind=ActorKind.SYSTEM)
        today = runtime.clock.now().date()
        for name, index in (("reveal", 1), ("erasure", 2), ("access", 3)):
            person = demo_person(77, index * 5 - 4)  # debtors of another seed than the demo's
            token = runtime.vault.create_subject(seeder, "debtor", person.fields)
            console.subjects[name] = Subject(token, person.fields)
        open_debt = NewDebt(id=f"DEBT-{uuid.uuid4().hex[:8]}", subject=console.subjects["erasure"].token,
                            creditor="Fikcyjny Bank S.A.", kind="general", consumer=True, amount_minor=1_250_00,
                            due_date=today - timedelta(days=200))
        runtime.contacts.debts.add(seeder, open_debt)
        now = datetime.now(UTC)
        for n, channel in enumerate(("phone", "sms", "email", "letter")):
            contact = ContactRecord(subject=console.subjects["erasure"].token, channel=channel, direction="outbound",
                                    agent_id="agent-console", started_at=now - timedelta(hours=n * 30),
                                    debt_id=open_debt.id, outcome="no_answer" if channel == "phone" else "sent")
            with contextlib.suppress(ContactRefusedError):  # refused (the hour, the day): a denial, also wanted
                runtime.contacts.record(seeder, contact)
        for name, roles in (("clerk", ["compliance_officer"]), ("officer", ["compliance_officer"]), ("dpo", ["dpo"]),
                            ("auditor", ["auditor"])):
            console.people[name] = Person(f"{name}-{uuid.uuid4().hex[:6]}", roles)
            _add_person(runtime, console.people[name])
        console.people["newbie"] = Person(f"newbie-{uuid.uuid4().hex[:6]}", ["compliance_officer"])
        _add_person(runtime, console.people["newbie"], enrol=False)
    finally:
        runtime.close()


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """``tarcza serve`` on a free port over a seeded SQLite data directory; stopped at the end."""
    chromium_or_skip()
    data_dir = tmp_path_factory.mktemp("console") / "var"
    data_dir.mkdir(mode=0o700)
    found = Console("", data_dir, f"sqlite:///{data_dir / 'tarcza.db'}")
    _seed(found)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env.update(TARCZA_DATA_DIR=str(data_dir), TARCZA_DATABASE_URL=found.database_url)
    try:
        with tarcza_serve(env, data_dir.parent / "server.log", timeout=60) as (url, _proc):
            found.base_url = url
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            yield found
    finally:
        if found._runtime is not None:
            found._runtime.close()


@pytest.fixture(scope="session")
def browser(console: Console) -> Iterator[Any]:
    """Headless Chromium from the Debian package, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """One browser context (cookies, language) with a page, and what its console printed."""

    def __init__(self, console: Console, context: Any) -> None:
        self.console = console
        self.context = context
        self.page = context.new_page()
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.console.url(path))

    def submit(self, selector: str) -> Any:
        """Click a submit button and return the answer to the form's POST (or GET) itself."""
        page = self.page
        with page.expect_response(lambda r: r.request.resource_type == "document"
                                  and r.request.method in ("POST", "GET")) as answer:
            page.click(selector)
        page.wait_for_load_state()
        return answer.value

    def login(self, person: Person, *, code: str | None = None) -> Any:
        self.goto("/console/login")
        self.page.fill("#username", person.username)
        self.page.fill("#password", PASSWORD)
        if code is None and person.secret is not None:
            code = person.code()
        if code:
            self.page.fill("#code", code)
        return self.submit("#login-form button[type=submit]")

    def check(self) -> None:
        """The page's accessibility and CSP basics hold, and the browser reported no CSP violation."""
        problems = self.page.evaluate(A11Y_CHECK)
        assert problems == [], f"{self.page.url}: {problems}"
        csp = [e for e in self.console_errors if "Content Security Policy" in e]
        assert csp == [], csp

    def shot(self, name: str) -> None:
        self.check()
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def field_error(self, name: str) -> str:
        """The message next to field ``name``, after checking it is linked to the field."""
        described = self.page.get_attribute(f"#{name}", "aria-describedby") or ""
        assert f"{name}-error" in described.split(), f"#{name} is not described by its error"
        assert self.page.get_attribute(f"#{name}", "aria-invalid") == "true"
        return str(self.page.text_content(f"#{name}-error")).strip()


@pytest.fixture
def anonymous(browser: Any, console: Console) -> Iterator[Session]:
    context = browser.new_context(locale="en-GB", accept_downloads=True)
    try:
        yield Session(console, context)
    finally:
        context.close()


def _logged_in(browser: Any, console: Console, name: str) -> Iterator[Session]:
    context = browser.new_context(locale="en-GB", accept_downloads=True)
    session = Session(console, context)
    answer = session.login(console.people[name])
    assert answer.status == 303, answer.status
    try:
        yield session
    finally:
        context.close()


@pytest.fixture(scope="session")
def officer(browser: Any, console: Console) -> Iterator[Session]:
    """A compliance officer, logged in once for the session (each log-in spends a TOTP step)."""
    yield from _logged_in(browser, console, "officer")


@pytest.fixture(scope="session")
def dpo(browser: Any, console: Console) -> Iterator[Session]:
    yield from _logged_in(browser, console, "dpo")


@pytest.fixture(scope="session")
def auditor(browser: Any, console: Console) -> Iterator[Session]:
    yield from _logged_in(browser, console, "auditor")
