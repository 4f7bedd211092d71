"""A flooded thread on the Slack sandbox page, in a real browser: a burst of 150 uses by one
person with the S3 archive (moto) and Slack's limits enforced by the sandbox is one notice with
its count, the ask and a few lines, and one rolling summary line. Keeps a screenshot in
docs/flood-thread.png (docs/performance.md, "Floods")."""

import os
import pathlib
import signal
import subprocess
import time

import boto3
import pytest
from selenium.webdriver.common.by import By

from test_sandbox_page import browser  # noqa: F401  (the same Chromium)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PORT = os.environ.get("BROWSER_TEST_FLOOD_PORT", "3132")
USES = 150


@pytest.fixture(scope="module")
def flooded():
    moto = os.environ.get("PRIVWATCH_MOTO_URL")
    assert moto, "run under scripts/with-moto.sh (make test does)"
    bucket = f"privwatch-flood-page-{os.getpid()}"
    boto3.client("s3", endpoint_url=moto, region_name="us-east-1").create_bucket(Bucket=bucket)
    subprocess.run(["cargo", "build", "--quiet", "--workspace", "--bins"], cwd=ROOT, check=True)
    process = subprocess.Popen(
        ["target/debug/privwatch-bench", "target/debug/privwatch", "fixtures", "--latency-ms", "0",
         "--show-burst", str(USES), "--port", PORT, "--archive-bucket", bucket, "--aws-endpoint", moto],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output = []
    deadline = time.time() + 400
    for line in process.stdout:
        output.append(line)
        if "page at" in line or time.time() > deadline:
            break
    assert any("page at" in line for line in output), "".join(output)
    yield "".join(output)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_a_flooded_thread_is_one_notice_a_few_lines_and_one_summary(flooded, browser):  # noqa: F811
    assert f"counting {USES}" in flooded and "settled" in flooded and "NOT" not in flooded, flooded
    browser.get(f"http://127.0.0.1:{PORT}/")
    notices = browser.find_elements(By.CSS_SELECTOR, "article.notice")
    assert len(notices) == 1, "one notice for the whole burst"
    notice = notices[0]
    assert f"Used {USES} times" in notice.text, notice.text
    replies = notice.find_elements(By.CSS_SELECTOR, ".thread .reply")
    assert 2 <= len(replies) <= 5, "the ask, a few lines, the summary"
    assert replies[0].find_elements(By.CSS_SELECTOR, ".mention"), "the ask mentions the person"
    summary = [r for r in replies if "uses in all" in r.text]
    assert len(summary) == 1, "one rolling summary line"
    assert f"{USES} uses in all" in summary[0].text, summary[0].text
    assert "AssumeRole" in summary[0].text and "203.0.113.200" in summary[0].text
    notice.screenshot(str(ROOT / "target" / "flood-thread.png"))
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        notice.screenshot(str(ROOT / "docs" / "flood-thread.png"))
