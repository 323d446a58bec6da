"""The demo shop in a real browser: headless Chromium, driven by selenium, against the demo
served as a user would run it (examples/serve.py) and under gunicorn with several worker
processes.

``DEMO_SCREENSHOT=docs/demo.png`` keeps the screenshot the shopping test takes (``make
screenshot`` does that); otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from dynamodb_session_flask import create_table

from .browser import chromium
from .conftest import item_count
from .engines import LocalEngine, free_port
from .servers import server_environment, serving

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SERVE_SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "serve.py"
WORKERS = 3
#: Enough reloads for one browser's requests to reach several workers, bounded.
MAX_RELOADS = 40
#: A fixed zone with no daylight saving, far from UTC, so a time shown in it is
#: unmistakably converted: the page's script must render UTC + 9 h.
BROWSER_TIMEZONE = "Asia/Tokyo"
TOKYO = timezone(timedelta(hours=9))
PAGE_TIMEOUT = 15
#: What a page costs a logged-in visitor: the session's GetItem, and the devices panel's
#: Query on the user index and BatchGetItem of the sessions it lists.
LOGGED_IN_PAGE_CALLS = {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
SCREENSHOT_WIDTH = 1100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def demo_table(admin_client: DynamoDBClient) -> Iterator[str]:
    name = f"browser-{uuid.uuid4().hex[:12]}"
    create_table(name, client=admin_client)
    yield name
    admin_client.delete_table(TableName=name)


# -- what a person does and sees ------------------------------------------------------------


def submit(driver: WebDriver, action: str, **fields: str) -> None:
    """Fill the form posting to ``action`` and press its button, as a person would; return
    once the page it leads to (after the redirect) has loaded."""
    form = driver.find_element(By.CSS_SELECTOR, f"form[action='{action}']")
    for name, value in fields.items():
        box = form.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    page = driver.find_element(By.TAG_NAME, "html")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # A click does not wait for the navigation it starts: wait until the old page is gone
    # and the new one has loaded.
    wait = WebDriverWait(driver, PAGE_TIMEOUT)
    wait.until(lambda _: is_gone(page))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def is_gone(element: WebElement) -> bool:
    """Whether ``element`` belongs to a page the browser has left. ChromeDriver answers a
    stale element either with StaleElementReferenceException or, while the old document is
    being torn down, with "Node with given id does not belong to the document", a plain
    WebDriverException; selenium's ``staleness_of`` only knows the first."""
    try:
        element.is_enabled()
    except WebDriverException:  # StaleElementReferenceException included
        return True
    return False


def text_of(driver: WebDriver, element_id: str) -> str | None:
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else None


def cart(driver: WebDriver) -> list[str]:
    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#cart li span")]


def previous_request(driver: WebDriver) -> tuple[str | None, dict[str, int], str | None]:
    """The cost panel: the previous request, its calls by operation and its write units."""
    calls = {
        cell.get_attribute("data-operation") or "": int(cell.text)
        for cell in driver.find_elements(By.CSS_SELECTOR, "#cost td[data-operation]")
    }
    return text_of(driver, "cost-request"), calls, text_of(driver, "write-units")


def logged_in(driver: WebDriver) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, "form[action='/logout']"))


def save_screenshot(driver: WebDriver, default: Path) -> Path:
    """The whole page as a PNG: at ``DEMO_SCREENSHOT`` when set, else at ``default``."""
    target = Path(os.environ.get("DEMO_SCREENSHOT") or default)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    # A viewport as tall as the page, so the picture has all of it and no scroll bar.
    metrics = {"width": SCREENSHOT_WIDTH, "height": int(height), "deviceScaleFactor": 1}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False})
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        assert driver.save_screenshot(str(target))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return target


# -- the demo as `make demo` serves it -------------------------------------------------------


@pytest.fixture
def demo_url(engine: LocalEngine, demo_table: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = server_environment(
        PORT=str(port), DYNAMODB_ENDPOINT_URL=engine.endpoint_url, DEMO_TABLE_NAME=demo_table
    )
    with serving([sys.executable, str(SERVE_SCRIPT)], url, tmp_path / "serve.log", env):
        yield url


def test_shopping_in_a_real_browser(
    demo_url: str, admin_client: DynamoDBClient, demo_table: str, tmp_path: Path
) -> None:
    with chromium(timezone=BROWSER_TIMEZONE) as driver:
        driver.get(demo_url)
        assert driver.find_elements(By.CSS_SELECTOR, "form[action='/login']")
        assert driver.get_cookie("id") is None

        # Shopping before logging in: the first change stores the session.
        submit(driver, "/cart", item="Blue teapot")
        assert text_of(driver, "notice") == "Added “Blue teapot” to your cart."
        assert previous_request(driver)[:2] == ("POST /cart", {"PutItem": 1})
        # A reload shows the same cart, no message, and what showing the last page cost:
        # reading the session is one GetItem, and nothing is written.
        driver.refresh()
        assert cart(driver) == ["Blue teapot"]
        assert text_of(driver, "notice") is None
        assert previous_request(driver) == ("GET /", {"GetItem": 1}, "0")
        anonymous_id = (driver.get_cookie("id") or {})["value"]

        submit(driver, "/login", user="alice")
        assert text_of(driver, "user") == "alice"
        assert (text_of(driver, "notice") or "").startswith("Welcome, alice!")
        assert cart(driver) == ["Blue teapot"]

        # The session cookie, as the browser's own jar holds it.
        cookie = driver.get_cookie("id")
        assert cookie is not None
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        # The demo runs on plain http://127.0.0.1, where a Secure cookie would never be
        # sent back; that is the one setting it changes (see examples/app.py).
        assert cookie["secure"] is False
        assert cookie["path"] == "/"
        # Logging in moved the session to a new id.
        assert cookie["value"] != anonymous_id
        # Scripts on the page cannot read it.
        assert "id=" not in driver.execute_script("return document.cookie")
        # It expires when the session does, as the page states it.
        expires = driver.find_element(By.ID, "expires").get_attribute("datetime") or ""
        expires_at = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert abs(cookie["expiry"] - expires_at.timestamp()) <= 2

        # Times are shown in the browser's zone, not the server's UTC.
        created = driver.find_element(By.ID, "created")
        created_at = datetime.strptime(
            created.get_attribute("datetime") or "", "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=timezone.utc)
        assert "GMT+9" in created.text
        assert created_at.astimezone(TOKYO).strftime("%I:%M") in created.text

        submit(driver, "/cart", item="Oolong tea, 100 g")
        assert text_of(driver, "notice") == "Added “Oolong tea, 100 g” to your cart."
        assert cart(driver) == ["Blue teapot", "Oolong tea, 100 g"]
        assert previous_request(driver)[:2] == ("POST /cart", {"GetItem": 1, "UpdateItem": 1})
        shot = save_screenshot(driver, tmp_path / "demo.png")
        assert shot.read_bytes().startswith(PNG_SIGNATURE)

        # Logged in, a page also lists the user's devices: a Query on the user index and a
        # BatchGetItem. Still nothing is written.
        driver.refresh()
        assert cart(driver) == ["Blue teapot", "Oolong tea, 100 g"]
        assert previous_request(driver) == ("GET /", LOGGED_IN_PAGE_CALLS, "0")
        assert item_count(admin_client, demo_table) == 1

        old_id = cookie["value"]
        submit(driver, "/logout")
        assert (text_of(driver, "notice") or "").startswith("You are logged out")
        assert not logged_in(driver) and cart(driver) == []
        assert driver.get_cookie("id") is None
        assert item_count(admin_client, demo_table) == 0

        # The old id is dead: put it back in the jar and it loads nothing, and the server
        # tells the browser to drop it.
        driver.add_cookie(
            {"name": "id", "value": old_id, "path": "/", "httpOnly": True, "sameSite": "Strict"}
        )
        driver.refresh()
        assert not logged_in(driver) and cart(driver) == []
        assert text_of(driver, "user") is None
        assert driver.get_cookie("id") is None


# -- several worker processes ---------------------------------------------------------------


@pytest.fixture
def gunicorn_url(engine: LocalEngine, demo_table: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = server_environment(
        DYNAMODB_ENDPOINT_URL=engine.endpoint_url,
        DEMO_TABLE_NAME=demo_table,
        DEMO_COST_LOG=str(tmp_path / "costs.sqlite3"),
        DEMO_SHOW_WORKER="1",
    )
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        f"--workers={WORKERS}",
        f"--bind=127.0.0.1:{port}",
        "--timeout=60",
        "--graceful-timeout=5",
        "examples.wsgi:app",
    ]
    with serving(command, url, tmp_path / "gunicorn.log", env) as master:
        yield url
        assert master.poll() is None, (tmp_path / "gunicorn.log").read_text()


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name, in parentheses, may itself hold spaces: split after it.
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_one_browser_across_gunicorn_worker_processes(
    gunicorn_url: str, admin_client: DynamoDBClient, demo_table: str
) -> None:
    with chromium() as driver:
        driver.get(gunicorn_url)
        submit(driver, "/login", user="alice")
        submit(driver, "/cart", item="Blue teapot")
        first_worker = int(text_of(driver, "worker") or 0)
        old_id = (driver.get_cookie("id") or {})["value"]

        workers = {first_worker}
        for _ in range(MAX_RELOADS):
            driver.refresh()
            # Whichever process serves the page, the session is the same, and so is the
            # cost record the previous request left (written by whichever served it).
            assert text_of(driver, "user") == "alice"
            assert cart(driver) == ["Blue teapot"]
            assert previous_request(driver) == ("GET /", LOGGED_IN_PAGE_CALLS, "0")
            workers.add(int(text_of(driver, "worker") or 0))
            if len(workers) >= 2:
                break
        assert len(workers) >= 2, f"every request was served by process {workers}"
        # They are workers of one server, not one process reused.
        assert len({parent_of(pid) for pid in workers}) == 1
        assert item_count(admin_client, demo_table) == 1

        submit(driver, "/logout")
        assert not logged_in(driver)
        driver.add_cookie({"name": "id", "value": old_id, "path": "/"})
        seen_after_logout = set()
        for _ in range(MAX_RELOADS):
            driver.refresh()
            assert not logged_in(driver) and cart(driver) == []
            seen_after_logout.add(int(text_of(driver, "worker") or 0))
            driver.add_cookie({"name": "id", "value": old_id, "path": "/"})
            if len(seen_after_logout) >= 2:
                break
        # The logout reached every process: the old id is dead on each.
        assert len(seen_after_logout) >= 2
