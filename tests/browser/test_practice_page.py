"""The practice page at `/`, used as a student would: in headless Chromium, on a real server."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from ielts_service.api.page import PAGE_CSP
from tests.browser.conftest import FAST, PHONE

NEXT = re.compile(r"^(Next question|Next topic|Continue to Part \d|Finish)$")


def start(page: Page, url: str, part: int, topic: str | None = None) -> None:
    page.goto(url + FAST)
    page.get_by_label(f"Part {part}:").check()
    if topic:
        page.get_by_label("Or type your own topic").fill(topic)
    page.get_by_role("button", name="Start this part").click()


def test_page_loads_with_the_topic_catalogue_under_a_strict_csp(
        page, console, practice, screenshot):
    response = page.goto(practice.url + "/")
    catalogue = httpx.get(practice.url + "/v1/topics").json()["data"]
    assert response is not None and response.headers["content-security-policy"] == PAGE_CSP
    expect(page).to_have_title("IELTS Speaking practice")
    expect(page.locator("#topic-choice option")).to_have_count(catalogue["count"] + 1)  # + "Any"
    session = page.evaluate("localStorage.getItem('ielts-practice-session')")
    expect(page.locator("#session-id")).to_have_text(session)
    screenshot(page, "loaded")
    assert console == []  # nothing blocked by the CSP, no script error


def test_part1_walks_one_question_at_a_time_with_the_session_id(page, console, practice,
                                                                 screenshot):
    with page.expect_request("**/generate-question") as sent:
        start(page, practice.url, 1, "music")
    session = page.evaluate("localStorage.getItem('ielts-practice-session')")
    assert sent.value.post_data_json == {"part": 1, "topic": "music", "session_id": session}
    expect(page.get_by_role("heading", name="Part 1: Interview")).to_be_focused()
    expect(page.get_by_text("From the offline question bank.")).to_be_visible()
    total = int(page.locator(".count").inner_text().rsplit(" ", 1)[1])
    first = page.locator(".question").inner_text()
    screenshot(page, "first-question")
    page.get_by_role("button", name="Next question").click()
    expect(page.locator(".count")).to_have_text(f"Question 2 of {total}")
    expect(page.locator(".question")).not_to_have_text(first)
    for _ in range(total - 2):
        page.get_by_role("button", name="Next question").click()
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("heading", name="Practice finished")).to_be_visible()
    assert console == []


def test_part2_shows_the_cue_card_and_the_timers_run(page, console, practice, screenshot):
    start(page, practice.url, 2, "a memorable trip")
    card = page.locator(".cue-card")
    expect(card.get_by_text("You should say:")).to_be_visible()
    expect(card.locator(".cue-title")).to_have_text(re.compile(r"^Describe .+\.$"))
    assert 3 <= card.locator("li").count() <= 4
    expect(card.locator("p").last).to_have_text(re.compile(r"^and explain .+\.$"))
    expect(card.locator(".cue-title")).to_have_text("Describe a memorable trip you have taken.")
    expect(page.locator(".topic")).to_have_text("memorable trip")  # what was asked, honoured
    clock, phase = page.locator(".clock"), page.locator(".phase")
    expect(phase).to_have_text("Preparation time")
    expect(clock).to_have_text("0:02")
    screenshot(page, "cue-card")
    expect(clock).to_have_text("0:01")  # the countdown moves (waited on, with a deadline)
    screenshot(page, "preparing")
    expect(phase).to_have_text("Talking time")
    expect(page.get_by_role("button", name="Stop talking")).to_be_visible()
    screenshot(page, "talking")
    expect(phase).to_have_text("Time is up")
    follow_ups = page.get_by_role("heading", name="Rounding-off questions")
    expect(follow_ups).to_be_focused()
    expect(page.locator(".follow-ups li").first).to_have_text(re.compile(r"\?$"))
    screenshot(page, "rounding-off")
    assert console == []


def test_practising_again_brings_a_different_card_in_the_same_session(page, practice):
    start(page, practice.url, 2, "travel")
    first = page.locator(".cue-title").inner_text()
    page.get_by_role("button", name="Start talking now").click()
    page.get_by_role("button", name="Stop talking").click()
    page.get_by_role("button", name="Finish").click()
    page.get_by_role("button", name="Practise again").click()
    expect(page.locator(".cue-title")).not_to_have_text(first)


def test_mock_test_reaches_part3_on_the_cards_theme(page, console, practice, screenshot):
    page.goto(practice.url + FAST)
    with page.expect_response("**/v1/mock-test") as answered:
        page.get_by_role("button", name="Start a full mock test").click()
    test = answered.value.json()["data"]
    part1 = [q for t in test["part1"]["topics"] for q in t["questions"]]
    for number, question in enumerate(part1):
        expect(page.get_by_role("heading", name="Part 1: Interview")).to_be_visible()
        expect(page.locator(".question")).to_have_text(question)
        if number == 0:
            screenshot(page, "part1")
        page.get_by_role("button", name=NEXT).click()
    expect(page.get_by_role("heading", name="Part 2: Long turn")).to_be_visible()
    card_topic = page.locator(".topic").inner_text()
    screenshot(page, "part2")
    page.get_by_role("button", name="Start talking now").click()
    page.get_by_role("button", name="Stop talking").click()
    page.get_by_role("button", name="Continue to Part 3").click()
    expect(page.get_by_role("heading", name="Part 3: Discussion")).to_be_visible()
    expect(page.locator(".meta")).to_contain_text(f"Theme: {card_topic} (from your Part 2 card)")
    assert test["part3"]["linked_to"] == test["part2"]["id"]
    screenshot(page, "part3")
    assert console == []


def test_a_topic_without_questions_offers_the_suggested_topics_as_buttons(
        page, console, practice, screenshot):
    catalogue = {t["topic"] for t in httpx.get(practice.url + "/v1/topics").json()["data"]["topics"]}
    start(page, practice.url, 2, "a skill you want to learn")
    expect(page.get_by_role("alert")).to_contain_text("no questions on this topic")
    offered = page.get_by_role("region", name="Topics with questions ready").get_by_role("button")
    expect(offered.first).to_be_focused()  # a keyboard user lands on the choices
    names = offered.all_inner_texts()
    assert 1 <= len(names) <= 5 and set(names) <= catalogue
    screenshot(page, "suggestions")
    with page.expect_request("**/generate-question") as sent:
        page.keyboard.press("Enter")
    assert sent.value.post_data_json["topic"] == names[0]
    assert sent.value.post_data_json["part"] == 2
    expect(page.locator(".cue-card")).to_be_visible()
    expect(page.locator(".topic")).to_have_text(names[0])
    expect(page.locator("#error")).to_be_empty()
    expect(page.locator("#suggestions")).to_be_hidden()
    screenshot(page, "suggested-card")
    # the only console line is the browser's own note of the 422 it was answered
    assert [e for e in console if "status of 422" not in e] == []


def test_a_mock_test_on_a_topic_without_a_card_offers_suggestions_too(page, practice):
    page.goto(practice.url + FAST)
    page.get_by_label("Or type your own topic").fill("a skill you want to learn")
    page.get_by_role("button", name="Start a full mock test").click()
    offered = page.get_by_role("region", name="Topics with questions ready").get_by_role("button")
    expect(offered.first).to_be_visible()
    chosen = offered.first.inner_text()
    with page.expect_request("**/v1/mock-test") as sent:
        offered.first.click()
    assert sent.value.post_data_json["topic"] == chosen
    expect(page.get_by_role("heading", name="Part 1: Interview")).to_be_visible()
    expect(page.get_by_role("region", name="Topics with questions ready")).to_be_hidden()


def test_a_rate_limited_request_says_when_to_try_again(page, serve, screenshot):
    server = serve(RATE_LIMIT_PER_MINUTE="1")
    start(page, server.url, 1)
    page.get_by_role("button", name="End practice").click()
    page.get_by_role("button", name="Start this part").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"Please try again in \d+ seconds\.$"))
    expect(page.get_by_role("heading", name="Choose what to practise")).to_be_visible()
    screenshot(page, "rate-limited")


def test_the_main_flow_works_by_keyboard_alone(page, console, practice, screenshot):
    page.goto(practice.url + FAST)
    expect(page.locator("#topic-choice optgroup").first).to_be_attached()
    mock = page.get_by_role("button", name="Start a full mock test")
    for _ in range(15):
        page.keyboard.press("Tab")
        if mock.evaluate("b => b === document.activeElement"):
            break
    expect(mock).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Part 1: Interview")).to_be_focused()
    screenshot(page, "part1-focused")
    for _ in range(20):  # Part 1 has three topics of 4-5 questions
        if page.get_by_role("heading", name="Part 2: Long turn").is_visible():
            break
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name=NEXT)).to_be_focused()
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Part 2: Long turn")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Start talking now")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Stop talking")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Rounding-off questions")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Continue to Part 3")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Part 3: Discussion")).to_be_focused()
    screenshot(page, "part3-focused")
    assert console == []


def test_a_phone_width_screen_needs_no_sideways_scrolling(page, practice, screenshot):
    page.set_viewport_size(PHONE)
    no_sideways = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    page.goto(practice.url + FAST)
    expect(page.locator("#topic-choice optgroup").first).to_be_attached()
    assert page.evaluate(no_sideways)
    screenshot(page, "setup")
    page.get_by_label("Part 2:").check()
    page.get_by_role("button", name="Start this part").click()
    expect(page.locator(".cue-card")).to_be_visible()
    assert page.evaluate(no_sideways)
    screenshot(page, "cue-card")


def test_only_the_pages_own_files_are_served(practice):
    script = httpx.get(practice.url + "/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for path in ("/static/nope.js", "/static/../app.py", "/static/%2e%2e/config.py",
                 "/static/", "/static/api/page.py"):
        response = httpx.get(practice.url + path)
        assert response.status_code == 404 and response.json()["code"] == "not_found", path
