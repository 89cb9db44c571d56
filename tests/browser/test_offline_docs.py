"""The API docs render in a real browser with no network but scangate itself: the air-gapped
cluster case, where FastAPI's default CDN-based pages stay blank."""

from __future__ import annotations

from tests.support.browser import Browser


def test_swagger_ui_renders_offline_and_shows_the_grant_request_example(
    live_server: str, browser: Browser
) -> None:
    page = browser.page
    page.goto(f"{live_server}/docs", wait_until="networkidle")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    operation = page.locator("#operations-grants-create_grant")
    operation.wait_for(timeout=20_000)
    browser.screenshot("docs-swagger-ui-overview.png")
    summary = operation.locator(".opblock-summary")
    assert summary.locator(".opblock-summary-method").inner_text() == "POST"
    assert summary.locator(".opblock-summary-path").inner_text().replace("\u200b", "") == (
        "/v1/grants"
    )

    summary.click()
    request_body = operation.locator(".opblock-section-request-body")
    request_body.wait_for(timeout=10_000)
    example = request_body.locator(".body-param__example, .highlight-code").first
    example.wait_for(timeout=10_000)
    text = example.inner_text()
    assert '"namespace": "payments"' in text
    assert '"scanner": "exec"' in text
    operation.evaluate("element => element.scrollIntoView({block: 'start'})")
    shot = browser.screenshot("docs-swagger-ui.png")

    assert shot.stat().st_size > 10_000
    assert browser.blocked == [], f"the page tried to leave loopback: {browser.blocked}"
    assert browser.errors == [], f"browser errors: {browser.errors}"


def test_redoc_renders_offline(live_server: str, browser: Browser) -> None:
    page = browser.page
    page.goto(f"{live_server}/redoc", wait_until="networkidle")
    page.wait_for_selector(".api-content", timeout=30_000)
    heading = page.get_by_role("heading", name="Request access to pods")
    heading.first.wait_for(timeout=20_000)
    heading.first.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)  # let ReDoc finish laying out the right-hand samples
    samples = page.locator("[data-section-id='operation/create_grant']")
    assert "/v1/grants" in samples.inner_text()
    assert '"namespace": "payments"' in samples.inner_text()  # our example, not a generated one
    shot = browser.screenshot("docs-redoc.png")

    assert shot.stat().st_size > 10_000
    assert browser.blocked == [], f"the page tried to leave loopback: {browser.blocked}"
    assert browser.errors == [], f"browser errors: {browser.errors}"
