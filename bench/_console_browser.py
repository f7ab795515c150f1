"""The browser half of ``bench/console.py``, run as its own process: Playwright needs
plain asyncio, and ``python -m bench`` patches eventlet in. Prints one JSON line.

Usage: python bench/_console_browser.py BASE PRODUCT_CODE PASSWORD SAMPLES"""
from __future__ import annotations

import json
import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
ROWS = "document.querySelectorAll('table.list tbody tr').length"


def main(base: str, product_code: str, password: str, samples: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"console_ms": [], "api_fetch_ms": [], "first_load_bytes": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        received: list[int] = []
        page.on("response", lambda r: received.append(int(r.headers.get("content-length") or 0)))
        page.goto(f"{base}/#/users")
        page.get_by_label("Код продукта").fill(product_code)
        page.get_by_label("Логин").fill("admin")
        page.get_by_label("Пароль").fill(password)
        page.get_by_role("button", name="Войти").click()
        page.wait_for_function(f"() => {ROWS} >= 50")
        out["first_load_bytes"].append(float(sum(received)))
        for _ in range(samples):
            # a reload: the session resumes from sessionStorage, /auth/me, then the list of 50 users
            page.reload()
            at = page.wait_for_function(f"() => {ROWS} >= 50 ? performance.now() : 0", polling="raf").json_value()
            out["console_ms"].append(float(at))
            # the baseline, in the same page and run: the list's own API call, bare
            bare = page.evaluate("""async () => {
                const token = JSON.parse(sessionStorage.getItem('crm.session')).access_token;
                const t0 = performance.now();
                const r = await fetch('/api/v1/users?limit=50', {headers: {Authorization: 'Bearer ' + token}});
                await r.json();
                return performance.now() - t0;
            }""")
            out["api_fetch_ms"].append(float(bare))
        browser.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
