"""The advisor console and the supervisor page in headless Chromium (Debian's package),
driven by Playwright against the running service and a real Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import TEAM, Api, assert_clean, message

from dispatcher import Dispatcher, keys
from dispatcher.testing import ServiceProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parent.parent / "docs"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); "
                             "`make test` installs it where it can")
#: The banner is up and says the dispatcher is unavailable (a press's 503 and a live
#: stream's reconnection answered 503 say the same words; which lands first is a race).
UNAVAILABLE_SHOWN = ("() => { const b = document.getElementById('banner');"
                     " return !b.hidden && b.textContent.includes('unavailable'); }")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(autouse=True)
def pages_closed(browser: Any, api: Api) -> Iterator[None]:
    """Each test's pages close with it, as a user closes the tab: their live streams end
    before the next test (the api fixture then proves none is left open)."""
    yield
    for context in list(browser.contexts):
        context.close()


def screenshot(page: Any, name: str, full_page: bool = False, selector: str | None = None
               ) -> None:
    """Refresh the screenshots in docs/ when asked (make screenshots): the page, or the
    element ``selector`` finds."""
    if os.environ.get("PUSHINBOX_SCREENSHOTS") == "1":
        if selector:
            page.locator(selector).screenshot(path=str(DOCS / name))
        else:
            page.screenshot(path=str(DOCS / name), full_page=full_page)


def open_console(browser: Any, service: ServiceProcess, token: str, **size: int) -> Any:
    page = browser.new_page(viewport={"width": size.get("width", 1280),
                                      "height": size.get("height", 720)})
    page.goto(service.url + "/")
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#console:not([hidden])")
    return page


def open_supervisor(browser: Any, service: ServiceProcess, token: str, **page: Any) -> Any:
    """The supervisor page, logged in with ``token``."""
    opened = browser.new_page(**page)
    opened.goto(service.url + "/ui/supervisor.html")
    opened.fill("#token", token)
    opened.click("#login button[type=submit]")
    return opened


def test_an_advisors_whole_day_in_the_console(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    # Today's working hours end two minutes from now (UTC), so a break ends there by itself.
    now = datetime.now(UTC)
    end = now + timedelta(minutes=2)
    close = "24:00" if end.date() != now.date() else end.strftime("%H:%M")
    api.sup("PUT", "/hours", json={"timezone": "UTC",
                                   "week": {now.strftime("%a").lower(): [f"00:00-{close}"]}})
    api.push(message(1, channel="whatsapp", body={"text": "Where is my parcel?"}),
             message(2, channel="email", body={"text": "Refund please"}),
             message(3, channel="webchat"))
    page = open_console(browser, service, api.advisor["ann"])
    assert page.text_content("#state") == "online"
    page.wait_for_function("document.querySelector('#stock-total').textContent === '3'")
    assert page.text_content("li[data-channel=whatsapp] b") == "1"

    page.click("#next")
    card = page.wait_for_selector("article.message[data-id=m1]")
    assert "Where is my parcel?" in card.text_content()
    assert page.is_visible("article.message button[data-action=reply]")
    screenshot(page, "console.png")
    page.click("article.message button[data-action=reply]")
    page.wait_for_function("document.querySelector('#fig-responses').textContent === '1'")
    page.wait_for_function("document.querySelector('#stock-total').textContent === '2'")

    page.keyboard.press("b")  # take a break
    page.wait_for_selector("#break-panel:not([hidden])")
    page.wait_for_timeout(1500)
    page.reload()  # the break is server state: the timer survives a refresh
    page.wait_for_selector("#break-panel:not([hidden])")
    assert page.text_content("#state") == "on break"
    page.wait_for_function("document.querySelector('#break-timer').textContent >= '00:01'")

    # At the end of the working-hours range the break ends (the reconciler, run at that moment).
    until = int(api.d.redis.hget(keys.advisor(TEAM, "ann"), "bu") or 0)
    assert until > 0
    Dispatcher(api.d.redis, clock=lambda: until + 1000).tick(TEAM)
    page.wait_for_selector("#break-panel", state="hidden")
    assert page.text_content("#state") == "online"

    page.keyboard.press("n")
    page.wait_for_selector("article.message[data-id=m2]")
    page.keyboard.press("l")  # log out with m2 unprocessed
    page.wait_for_selector("#login:not([hidden])")
    assert "went back to the team" in page.text_content("#login-error")

    bob = open_console(browser, service, api.advisor["bob"])
    bob.wait_for_function("document.querySelector('#stock-total').textContent === '2'")
    bob.click("#next")
    got = bob.wait_for_selector("article.message[data-id=m2]")
    assert "Refund please" in got.text_content()
    found = api.sup("GET", "/messages/m2").json()
    assert found["reassigned"] is True and found["advisor"] == "bob"
    assert_clean(api.d)


def test_the_console_shows_an_empty_stock_and_an_expired_token(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    page = open_console(browser, service, api.advisor["ann"], width=768, height=1024)
    page.click("#next")
    page.wait_for_selector("#empty-stock")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "the console must fit a tablet without scrolling sideways"
    token_id = api.advisor["ann"].split("_")[1]
    from dispatcher import tokens

    api.d.run(tokens.revoke_token(token_id))
    page.wait_for_timeout(400)  # the test service trusts a checked token for 0.2 s
    page.click("#next")
    page.wait_for_selector("#login:not([hidden])")
    assert "expired" in page.text_content("#login-error")
    assert page.evaluate("sessionStorage.getItem('pushinbox.token')") is None


def test_a_supervisor_moves_the_vip_group_down_and_the_preview_changes(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.sup("PUT", "/groups", json={"groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
        {"name": "WhatsApp", "match": {"channel_in": ["whatsapp"]}}]})
    api.push(message(1, channel="whatsapp"), message(2, channel="webchat", customer_tags=["VIP"]))
    page = open_supervisor(browser, service, api.supervisor,
                           viewport={"width": 1280, "height": 900})
    page.wait_for_selector("#preview tr")
    assert page.text_content("#preview tr:first-child .group-name") == "VIP"
    assert page.input_value(".group[data-name=VIP] input[data-key=customer_tags_any]") == "VIP"

    whatsapp = page.locator(".group[data-name=WhatsApp]")
    height = whatsapp.bounding_box()["height"]
    page.locator(".group[data-name=VIP] .handle").drag_to(
        whatsapp, target_position={"x": 20, "y": height - 5})
    names = page.eval_on_selector_all("#groups .group input.name", "els => els.map(e => e.value)")
    assert names == ["WhatsApp", "VIP"]
    page.click("#save-groups")
    page.wait_for_function(
        "document.querySelector('#preview tr:first-child .group-name')?.textContent === 'WhatsApp'")
    assert [g["name"] for g in api.sup("GET", "/groups").json()["groups"]] == ["WhatsApp", "VIP"]

    # A group's match is edited with form controls, not JSON, and bad input is named.
    page.fill(".group[data-name=VIP] input.name", "")
    page.click("#save-groups")
    page.wait_for_selector("#groups-status.error")
    assert "groups[1].name" in page.text_content("#groups-status")

    # Assign by hand from the preview.
    api.d.login(TEAM, "cid")
    page.select_option("#preview tr:first-child select", "cid")
    page.wait_for_function("document.querySelector('#assign-status').textContent.includes('cid')")
    assert [m["id"] for m in api.call("GET", f"/v1/teams/{TEAM}/advisors/cid/messages",
                                      api.admin).json()] == ["m1"]


def test_a_supervisor_sets_working_hours_and_reads_the_break_chart(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.sup("PUT", "/groups", json={"groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
        {"name": "Automatically reassigned", "match": {"reassigned": True}}]})
    api.push(message(1, channel="whatsapp"), message(2, customer_tags=["VIP"]),
             message(3, channel="email"))
    for adv in ("ann", "bob"):
        api.adv("POST", adv, "/session")
        api.adv("POST", adv, "/break")
    page = open_supervisor(browser, service, api.supervisor,
                           viewport={"width": 1280, "height": 900})
    page.wait_for_timeout(1200)  # a second of break, then ended
    for adv in ("ann", "bob"):
        api.adv("DELETE", adv, "/break")
    page.dispatch_event("#week", "change")
    page.wait_for_selector("#chart svg rect")
    assert "ann" in page.text_content("#chart")  # the legend names who took breaks
    assert "bob" in page.text_content("#chart")
    page.wait_for_selector("#preview tr")
    screenshot(page, "supervisor.png", full_page=True)
    page.fill("#tz", "Europe/Paris")
    page.fill("#hours input[data-day=mon]", "09:00-12:30, 13:30-18:00")
    page.click("#save-hours")
    page.wait_for_function("document.querySelector('#hours-status').textContent === 'Saved.'")
    assert api.sup("GET", "/hours").json() == {
        "timezone": "Europe/Paris", "week": {"mon": ["09:00-12:30", "13:30-18:00"]}}
    page.fill("#hours input[data-day=tue]", "18:00-09:00")
    page.click("#save-hours")
    page.wait_for_selector("#hours-status.error")
    assert "week.tue" in page.text_content("#hours-status")


@contextlib.contextmanager
def own_redis_and_service() -> Iterator[tuple[Any, list[ServiceProcess], str, Dispatcher]]:
    """A Redis of its own (a test that kills it) with TEAM and advisor ann, the service on
    it, and ann's token; both stopped at the end (the test may swap the service)."""
    from dispatcher import tokens
    from dispatcher.testing import RedisServer

    server = RedisServer().start()
    d = Dispatcher(server.client())
    d.create_team(TEAM)
    d.set_role(TEAM, "agent")
    d.set_advisor(TEAM, "ann", "agent")
    token = d.run(tokens.create_token("advisor", team=TEAM, advisor="ann")).token
    held = [ServiceProcess(server.url).start()]
    try:
        yield server, held, token, d
    finally:
        for svc in held:
            svc.stop()
        server.stop()


def test_the_console_says_when_the_dispatcher_is_unreachable_and_recovers(
        browser: Any, http_team: Dispatcher) -> None:
    with own_redis_and_service() as (server, services, token, d):
        page = open_console(browser, services[0], token)
        d.redis.save()  # Redis comes back with its data, all at once (as from its disk)
        server.stop(kill=True)
        page.click("#next")
        page.wait_for_function(UNAVAILABLE_SHOWN, timeout=10_000)
        server.start()
        page.click("#next")
        page.wait_for_selector("#empty-stock")
        # (a live reconnection's 503 sent while Redis was away may land after the press)
        page.wait_for_selector("#banner", state="hidden", timeout=5_000)


def test_the_console_says_the_dispatcher_is_unavailable_while_its_live_updates_cannot_reconnect(
        browser: Any, http_team: Dispatcher) -> None:
    # A deploy while Redis is away: the live stream breaks with the old process and its
    # reconnections meet the new one's 503. The banner says what a press would say, not a
    # vaguer "interrupted" (the two used to take turns, one each second).
    with own_redis_and_service() as (server, services, token, d):
        page = open_console(browser, services[0], token)
        d.redis.save()
        server.stop(kill=True)
        services[0].stop()
        services.append(ServiceProcess(server.url, port=services[0].port).start())
        page.wait_for_function(UNAVAILABLE_SHOWN, timeout=10_000)
        time.sleep(2.5)  # two more reconnections: still the same words
        assert "unavailable" in page.text_content("#banner")
        server.start()
        page.wait_for_selector("#banner", state="hidden", timeout=10_000)


def test_the_console_says_when_the_dispatcher_is_full_and_carries_on_once_memory_is_freed(
        browser: Any, http_team: Dispatcher) -> None:
    with own_redis_and_service() as (server, services, token, _d):
        page = open_console(browser, services[0], token)
        r = server.client()
        r.config_set("maxmemory", r.info("memory")["used_memory"] // 2)  # past it: full
        page.click("#next")
        page.wait_for_function("() => document.getElementById('banner').textContent"
                               ".includes('out of memory')", timeout=10_000)
        r.config_set("maxmemory", 0)  # the operator raises the limit
        page.click("#next")
        page.wait_for_selector("#empty-stock")
        page.wait_for_selector("#banner", state="hidden", timeout=5_000)


def test_a_console_opened_beyond_its_tokens_live_streams_says_so_and_joins_when_one_closes(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    from test_http_live import Stream

    tabs = [Stream(api, f"/v1/teams/{TEAM}/advisors/ann/live", api.advisor["ann"])
            for _ in range(32)]  # the most one token may hold open in a process
    try:
        for tab in tabs:
            tab.wait_for(lambda e: e[0] == "stock")
        page = open_console(browser, service, api.advisor["ann"])
        page.wait_for_function("() => document.getElementById('banner').textContent"
                               ".includes('32 live streams')", timeout=10_000)
        tabs.pop().close()
        page.wait_for_selector("#banner", state="hidden", timeout=10_000)  # (retries: 5 s)
    finally:
        for tab in tabs:
            tab.close()


def test_logging_out_leaves_no_customer_text_on_the_page(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.push(message(1, body={"text": "My secret address is 12 Elm Street"}))
    page = open_console(browser, service, api.advisor["ann"])
    page.click("#next")
    page.wait_for_selector("article.message[data-id=m1]")
    page.keyboard.press("l")  # log out
    page.wait_for_selector("#login:not([hidden])")
    assert "Elm Street" not in page.content()  # not merely hidden: gone from the DOM
    assert not page.is_visible("#console") and not page.is_visible("#work")
    page.close()


def test_an_advisor_logged_out_by_someone_else_is_told_and_loses_the_cards(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.push(message(1, body={"text": "Where is my parcel?"}))
    page = open_console(browser, service, api.advisor["ann"])
    page.click("#next")
    page.wait_for_selector("article.message[data-id=m1]")
    api.d.logout(TEAM, "ann")  # the reaper, a supervisor or the end of hours
    page.wait_for_selector("#logged-out:not([hidden])", timeout=10_000)
    assert "logged out" in page.text_content("#logged-out")
    assert page.query_selector("article.message[data-id=m1]") is None
    page.close()


def test_a_held_message_stays_apart_and_the_advisor_can_press_on(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.push(message(1, body={"text": "first"}), message(2, body={"text": "second"}))
    page = open_console(browser, service, api.advisor["ann"])
    page.click("#next")
    page.wait_for_selector("article.message[data-id=m1]")
    page.click("article.message[data-id=m1] button[data-action='put on hold']")
    page.wait_for_selector("#on-hold article.message[data-id=m1]")
    page.click("#next")
    page.wait_for_selector("article.message[data-id=m2]")
    assert page.query_selector("#on-hold article.message[data-id=m1]") is not None
    assert "Process the message above first" not in page.content()
    page.close()


def test_reply_and_next_answers_the_message_and_shows_the_next_one(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.push(message(1, body={"text": "first"}), message(2, body={"text": "second"}))
    page = open_console(browser, service, api.advisor["ann"])
    page.click("#next")
    page.wait_for_selector("article.message[data-id=m1]")
    page.click("article.message[data-id=m1] button[data-action='reply & next']")
    page.wait_for_selector("article.message[data-id=m2]")
    assert page.query_selector("article.message[data-id=m1]") is None
    assert api.d.message(TEAM, "m1").done == "replied"
    page.keyboard.press("x")  # the same from the keyboard, on the last one: the stock is empty
    page.wait_for_selector("#empty-stock")
    assert api.d.message(TEAM, "m2").done == "replied"
    assert_clean(api.d)
    page.close()


def test_cards_show_their_age_and_current_messages_do_not_repeat_the_push(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.push(message(1, conv="c1"), message(2, conv="c2"))
    api.d.login(TEAM, "ann")
    api.d.assign(TEAM, "ann", "m2")  # by hand: in current messages, not pushed
    page = open_console(browser, service, api.advisor["ann"])
    page.click("#next")
    card = page.wait_for_selector("article.message[data-id=m1]")
    assert "received" in card.text_content() and "ago" in card.text_content()
    page.click("#show-current")
    page.wait_for_selector("#current article.message[data-id=m2]")
    assert page.query_selector("#current article.message[data-id=m1]") is None
    assert page.query_selector("#current kbd:empty") is None
    page.close()


def test_the_assign_list_offers_only_advisors_who_can_receive(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.push(message(1))
    api.d.login(TEAM, "bob")
    page = open_supervisor(browser, service, api.supervisor)
    page.wait_for_selector("#preview tr select")
    options = page.eval_on_selector_all("#preview tr:first-child select option",
                                        "els => els.map(e => e.value).filter(Boolean)")
    assert options == ["bob"]
    assert page.query_selector("link[rel=icon]") is not None
    assert api.http.get("/ui/favicon.svg").status_code == 200
    page.close()


def test_a_supervisor_requires_a_skill_and_advisors_without_it_never_get_those_messages(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.sup("PUT", "/groups", json={"groups": [
        {"name": "Korean", "match": {"language_in": ["ko"]}}]})
    api.push(message("k1", language="ko"), message("k2"))
    page = open_supervisor(browser, service, api.supervisor,
                           viewport={"width": 1280, "height": 1200})
    page.wait_for_selector(".group[data-name=Korean]")
    page.fill(".group[data-name=Korean] input[data-rs]", "ko")
    # a first group for anything that waited over 10 minutes, set with the form
    page.click("#add-group")
    page.fill(".group[data-name='New group'] input.name", "Overdue")
    page.fill(".group[data-name='New group'] input[data-wt]", "600")
    page.click(".group[data-name='New group'] button[title='Move up']")
    page.click("#save-groups")
    page.wait_for_selector("#group-stock tr.unserved[data-group=Korean]")
    groups = api.sup("GET", "/groups").json()["groups"]
    assert groups[0] == {"name": "Overdue", "match": {"waiting_longer_than": 600}}
    assert groups[1]["requires_skills"] == ["ko"]
    page.fill(".group[data-name='New group'] input[data-wt]", "0")
    page.click("#save-groups")
    page.wait_for_selector("#groups-status.error")
    assert "groups[0].match.waiting_longer_than" in page.text_content("#groups-status")

    bob = open_console(browser, service, api.advisor["bob"])  # no skills: only k2, then none
    bob.click("#next")
    bob.wait_for_selector("article.message[data-id=mk2]")
    bob.click("article.message button[data-action=reply]")
    bob.wait_for_function("!document.querySelector('article.message[data-id=mk2]')")
    bob.click("#next")
    bob.wait_for_timeout(500)
    assert bob.query_selector("article.message[data-id=mk1]") is None

    page.wait_for_selector("#skills tr[data-advisor=ann] input")
    page.fill("#skills tr[data-advisor=ann] input", "ko")
    page.click("#skills tr[data-advisor=ann] button")
    page.wait_for_function("document.querySelector('#skills-status').textContent.includes('ko')")
    assert [a["skills"] for a in api.sup("GET", "/advisors").json()
            if a["advisor"] == "ann"] == [["ko"]]
    ann = open_console(browser, service, api.advisor["ann"])
    ann.click("#next")
    ann.wait_for_selector("article.message[data-id=mk1]")
    page.wait_for_selector("#group-stock tr[data-group=Korean]:not(.unserved)")


def test_a_supervisor_reads_todays_report_and_downloads_it(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.d.login(TEAM, "ann")
    api.push(message("p1"), message("p2"))
    assert api.adv("POST", "ann", "/next").status_code == 200
    assert api.adv("POST", "ann", "/messages/mp1/reply").status_code == 200
    page = open_supervisor(browser, service, api.supervisor,
                           viewport={"width": 1280, "height": 1600}, timezone_id="Europe/Paris")
    page.wait_for_selector("#report-advisors tr[data-row=ann]")
    assert page.text_content("#report-advisors tr[data-row=ann] td[data-col=responses]") == "1"
    assert page.text_content(
        "#report-groups tr[data-row='everything else'] td[data-col=arrivals]") == "2"
    assert page.locator("#report-chart rect.wait-bar").count() == 1
    screenshot(page, "supervisor-report.png", selector="section.card:has(#report-advisors)")
    with page.expect_download() as download:
        page.click("#report-csv")
    text = Path(download.value.path()).read_text()
    assert text.startswith("table,advisor,pushed") and "ann" in text
    page.fill("#report-day", "2020-01-01")
    page.dispatch_event("#report-day", "change")
    page.wait_for_function("!document.querySelector('#report-advisors tr[data-row=ann]')")


def test_an_advisor_starts_a_break_and_the_supervisor_sees_it_within_a_second(
        browser: Any, api: Api, service: ServiceProcess) -> None:
    api.d.login(TEAM, "ann")
    api.d.login(TEAM, "bob")
    page = open_supervisor(browser, service, api.supervisor,
                           viewport={"width": 1280, "height": 1400})
    page.wait_for_selector("#view-advisors tr[data-advisor=bob]")
    assert page.text_content("#view-advisors tr[data-advisor=bob] td.state") == "available"
    page.wait_for_timeout(300)  # the live stream is open
    started = time.monotonic()
    assert api.adv("POST", "bob", "/break").status_code in (200, 201)
    page.wait_for_function(
        "document.querySelector('#view-advisors tr[data-advisor=bob] td.state')"
        ".textContent === 'on break'", timeout=5000)
    assert time.monotonic() - started < 1.5
    api.push(message("w1"))
    page.wait_for_function(
        "document.querySelector(\"#view-groups tr[data-group='everything else'] td.waiting\")"
        ".textContent === '1'", timeout=5000)
    screenshot(page, "supervisor-team.png", selector="section.card:has(#view-advisors)")
