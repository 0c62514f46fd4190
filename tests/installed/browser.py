"""The browser step of the installed-package smoke test: Chromium opens a page.

``smoke.py`` (in the wheel's virtualenv, which has no Playwright) serves the
page and runs this script with the development environment's Python, which has
Playwright. The page, served by the installed package, loads
``/socket.io/socket.io.js`` from it, connects with ``io()`` and round-trips an
event; it reports in ``window.smoke``.

Usage: ``python -I browser.py URL``. Prints one line; exits 0 when the page
reported success, 1 on a failure, 77 when the step cannot run here (no Chromium,
no Playwright), with the reason.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
WAIT = 20.0


async def main(url: str) -> int:
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} is not installed")
        return 77
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        print("skipped: Playwright is not installed in this Python")
        return 77
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)
            handle = await page.wait_for_function("window.smoke", timeout=WAIT * 1000)
            result = await handle.json_value()
        finally:
            await browser.close()
    print(json.dumps({"page": result, "errors": errors}))
    return 0 if result.get("ok") and not errors else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
