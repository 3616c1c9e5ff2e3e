"""Debian's Chromium through Playwright for the staff pages' tests: the browser, a tab that keeps
its script errors and the headers of the pages it loads, axe-core and a screenshot of a page at
both widths, and sign-in through Keycloak's own form."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.keycloak import User

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE = Path(__file__).resolve().parents[2] / "tools/axe-core/node_modules/axe-core/axe.min.js"
WIDTHS = {"lebar": 1280, "ponsel": 390}


def needs(what: str, present: bool) -> None:
    """Skip without ``what``; under CI=true a missing dependency is a failure."""
    if present:
        return
    if IN_CI:
        pytest.fail(f"{what} missing (CI=true: a missing dependency is a failure)", pytrace=False)
    pytest.skip(f"{what} missing")


def needs_browser(*, axe: bool = True) -> None:
    needs("Chromium (Debian package 'chromium'; `make browser`)", CHROMIUM is not None)
    if axe:
        needs("axe-core (`make axe-install`)", AXE.is_file())


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, closed at the end of the block."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """A page in a context of its own, with what it saw: script errors, and the headers of each
    page of the service it loaded (``prefixes``; not static files or PDFs)."""

    page: Any
    errors: list[str] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


async def open_tab(
    browser: Any,
    base: str,
    *,
    prefixes: tuple[str, ...] = ("/staf",),
    width: int = 1280,
    height: int = 900,
    **options: Any,
) -> Tab:
    """A new context and page at ``width``; axe is injected as a script, so unless told
    otherwise (``bypass_csp=False``) the pages' own policy is bypassed."""
    context = await browser.new_context(
        viewport={"width": width, "height": height},
        **({"bypass_csp": True, "locale": "id-ID"} | options),
    )
    tab = Tab(page=await context.new_page())
    tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    record_headers(tab.page, base, tab.headers, prefixes)
    return tab


def record_headers(
    page: Any, base: str, into: dict[str, dict[str, str]], prefixes: tuple[str, ...] = ("/staf",)
) -> None:
    def seen(response: Any) -> None:
        path = response.url[len(base) :] if response.url.startswith(base) else ""
        if path.startswith(prefixes) and "/static/" not in path:
            if not path.endswith(".pdf") and not path.endswith("/pdf"):
                into[response.url] = response.headers

    page.on("response", seen)


def assert_security_headers(headers: dict[str, dict[str, str]]) -> None:
    """Every page recorded carries the staff pages' security headers."""
    assert headers, "no page of the service was recorded"
    for url, got in headers.items():
        policy = got.get("content-security-policy", "")
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy, url
        assert got.get("x-content-type-options") == "nosniff", url
        assert got.get("referrer-policy"), url


class Checker:
    """Runs axe-core and takes a screenshot of a page at both widths."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots, self.violations = page, shots, []

    async def check(self, name: str) -> None:
        for label, width in WIDTHS.items():
            await self.page.set_viewport_size({"width": width, "height": 900})
            await self.page.add_script_tag(path=str(AXE))
            found = await self.page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']}))
                  .violations.filter(v => ['serious', 'critical'].includes(v.impact))
                  .map(v => v.id + ' ' + v.nodes.map(n => n.target.join(' ')).join(' | '))"""
            )
            self.violations += [f"{name} @{width}px: {v}" for v in found]
            overflow = await self.page.evaluate(
                "document.documentElement.scrollWidth > document.documentElement.clientWidth"
            )
            if overflow:
                self.violations.append(f"{name} @{width}px: the page scrolls sideways")
            await self.page.screenshot(path=str(self.shots / f"{name}-{label}.png"), full_page=True)
        await self.page.set_viewport_size({"width": 1280, "height": 900})


async def sign_in(page: Any, base: str, user: User, start: str = "/staf/warga-binaan") -> Any:
    """Through Keycloak's own form, from ``start`` back to ``start``; the first answer."""
    answer = await page.goto(f"{base}{start}")
    await page.get_by_role("link", name="Masuk dengan akun kementerian").click()
    await page.fill("#username", user.username)
    await page.fill("#password", user.password)
    await page.click("#kc-login")
    await page.wait_for_url(f"{base}{start}")
    return answer
