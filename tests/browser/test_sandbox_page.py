"""The Slack sandbox page in a real browser (Debian's Chromium, driven by Selenium): after a
demo run, a reader sees the notices and, in their threads, the reply with the person's mention.
Keeps a screenshot in docs/sandbox.png."""

import os
import pathlib
import signal
import subprocess
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = pathlib.Path(__file__).resolve().parents[2]
PORT = os.environ.get("BROWSER_TEST_SANDBOX_PORT", "3131")
WATCH_PORT = os.environ.get("BROWSER_TEST_WATCH_PORT", "9131")


@pytest.fixture(scope="module")
def demo():
    env = dict(os.environ, KEEP_OPEN="1", SANDBOX_PORT=PORT, WATCH_PORT=WATCH_PORT, LOG_DIR="target/browser-demo")
    process = subprocess.Popen(
        ["scripts/demo.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    output = []
    deadline = time.time() + 600
    for line in process.stdout:
        output.append(line)
        if "stays at" in line or time.time() > deadline:
            break
    assert any("stays at" in line for line in output), "".join(output)
    yield "".join(output)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1000,2400"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    yield driver
    driver.quit()


def test_the_page_shows_notices_with_their_threaded_mentions(demo, browser):
    browser.get(f"http://127.0.0.1:{PORT}/")
    notices = browser.find_elements(By.CSS_SELECTOR, "article.notice")
    assert len(notices) >= 8, len(notices)
    saml = [n for n in notices if "bob@" in n.text and "AdministratorAccess" in n.text]
    assert saml, "the IAM Identity Center notice is shown"
    replies = saml[0].find_elements(By.CSS_SELECTOR, ".thread .reply")
    assert len(replies) == 2, "privwatch's question and bob's answer"
    mention = replies[0].find_element(By.CSS_SELECTOR, ".mention")
    assert mention.text == "@bob", "the reply mentions the person, resolved to a name"
    assert "ticket URL" in replies[0].text
    # The hostile record's markup is shown as text, never as a mention or a link.
    hostile = [n for n in notices if "evil.example" in n.text]
    assert hostile
    for notice in hostile:
        assert not notice.find_elements(By.CSS_SELECTOR, "a[href*='evil']")
        for m in notice.find_elements(By.CSS_SELECTOR, ".mention"):
            assert m.text == "@here", m.text  # only the fallback privwatch chose
    # The justification loop of the demo: alice's three uses share one thread (coalesced) that
    # nobody answered (chased once); bob answered his (justified, with a reaction).
    alice = [n for n in notices if "alice@" in n.text and "GoogleWorkspaceAdmin" in n.text]
    assert len(alice) == 1, "alice's uses are coalesced into one notice"
    assert "Used 3 times" in alice[0].text
    alice_replies = alice[0].find_elements(By.CSS_SELECTOR, ".thread .reply")
    assert len([r for r in alice_replies if "Again" in r.text]) == 2
    assert len([r for r in alice_replies if "Nobody has explained" in r.text]) == 1
    bob = saml[0]
    assert bob.find_elements(By.CSS_SELECTOR, ".reaction"), "bob's notice is marked justified"
    assert not [r for r in replies if "Nobody has explained" in r.text]
    (ROOT / "docs").mkdir(exist_ok=True)
    browser.save_screenshot(str(ROOT / "target" / "sandbox.png"))
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        browser.save_screenshot(str(ROOT / "docs" / "sandbox.png"))
        alice[0].screenshot(str(ROOT / "docs" / "loop-coalesced-chased.png"))
        bob.screenshot(str(ROOT / "docs" / "loop-justified.png"))
