"""A class in real Chromium, with two people in two browser contexts: a teacher creates a class
and assigns a term, a learner joins with the link (logging in on the way), sees the term first
among the suggestions and takes its quiz, and the teacher's grid shows the learner's mastery in
the map's colour."""

from pathlib import Path

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TERM = "backpropagation"  # no "predict, then observe" question: no live model needed
FAMILIAR_FILL = "rgb(147, 197, 253)"  # --familiar, as on the map


def new_page(browser, **options):
    context = browser.new_context(locale="en-US", **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.js_errors = errors
    return context, page


def log_in(page, username, password):
    """The real login form (the page we were sent to, with its ``next``)."""
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").last.click()
    page.wait_for_load_state()


def correct_key():
    """The right answer, looked up on the server side (the page never holds it)."""
    from quiz.models import Attempt

    attempt = Attempt.objects.order_by("-started_at").first()
    return attempt.items.filter(answered_at__isnull=True).order_by("position").first()


def test_a_teacher_sees_a_learner_who_joined_and_took_a_quiz(
    live_server, glossary_tx, browser, django_user_model
):
    django_user_model.objects.create_user("sensei", password="pw-sensei-1")
    django_user_model.objects.create_user("mika", password="pw-mika-1")
    teacher_context, teacher = new_page(browser, viewport={"width": 1280, "height": 900})
    learner_context, learner = new_page(browser, viewport={"width": 390, "height": 844})
    contexts = [teacher_context, learner_context]
    try:
        # the teacher: log in on the way to the classes page, create a class, assign a term
        teacher.goto(f"{live_server.url}/en/classes/")
        log_in(teacher, "sensei", "pw-sensei-1")
        assert teacher.url.endswith("/en/classes/")
        teacher.get_by_label("Class name").fill("Evening course")
        teacher.get_by_role("button", name="Create the class").click()
        teacher.wait_for_selector(".join-link")
        assert teacher.locator("h1").inner_text() == "Evening course"
        join_url = teacher.locator(".join-link").get_attribute("href")
        code = teacher.locator(".class-invite .join-code").inner_text()
        assert join_url.endswith(f"/en/classes/join/{code}/")
        teacher.get_by_label("Backpropagation").check()
        teacher.get_by_role("button", name="Save assigned terms").click()
        teacher.wait_for_selector(".messages")
        assert "No learner has joined yet" in teacher.content()

        # the learner, on a phone: the link asks them to log in, then brings them back
        learner.goto(join_url)
        log_in(learner, "mika", "pw-mika-1")
        assert learner.url == join_url
        assert "Evening course" in learner.locator("h1").inner_text()
        learner.get_by_role("button", name="Join the class").click()
        learner.wait_for_url("**/en/progress/")
        first = learner.locator("#next-heading ~ ul.suggestions li").first
        assert first.get_attribute("data-assigned") == "true"
        assert first.locator("a").get_attribute("href") == f"/en/terms/{TERM}/"

        # the learner takes the assigned term's check: three right answers
        learner.goto(f"{live_server.url}/en/terms/{TERM}/quiz/")
        learner.get_by_role("button", name="Start the 3-question check").click()
        for number in range(3):
            learner.wait_for_selector("#quiz-box .question-form")
            item = correct_key()
            learner.locator(
                f'#quiz-box input[name="choice"][value="{item.question.correct_key}"]'
            ).check()
            confidence = learner.locator('#quiz-box input[name="confidence"][value="sure"]')
            if confidence.count():  # the confidence step, where the answer form has it
                confidence.check()
            learner.get_by_role("button", name="Answer").click()
            learner.wait_for_selector("#quiz-box .feedback")
            if number < 2:
                learner.get_by_role("button", name="Next question").click()
        learner.get_by_role("button", name="See your score").click()
        learner.wait_for_selector("#quiz-box .summary")
        assert learner.locator("#quiz-box .summary").get_attribute("data-score") == "3"

        # the teacher's grid: mika's cell for the term is "familiar", in the map's colour
        teacher.reload()
        row = teacher.locator('table.class-grid tr[data-learner="mika"]')
        assert row.count() == 1
        header = teacher.locator("table.class-grid thead th")
        assert header.nth(1).get_attribute("data-slug") == TERM  # assigned: first column
        cell = row.locator("td").first
        assert cell.get_attribute("data-mastery") == "familiar"
        assert cell.locator(".pill").inner_text().strip() == "Familiar"
        background = cell.locator(".pill").evaluate("el => getComputedStyle(el).backgroundColor")
        assert background == FAMILIAR_FILL
        facility = teacher.locator(f'table.class-questions tr[data-question^="{TERM}/"]')
        assert facility.count() == 3
        assert {facility.nth(n).get_attribute("data-facility") for n in range(3)} == {"1.00"}
        screenshot(teacher, "class-dashboard")

        # the CSV, downloaded by the browser with the teacher's session
        with teacher.expect_download() as download:
            teacher.get_by_role("link", name="Download as CSV").click()
        lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith(f"learner,{TERM},")
        assert lines[1].startswith("mika,familiar,")

        # the learner cannot open the dashboard
        response = learner.goto(teacher.url)
        assert response.status == 404
        learner.js_errors[:] = [e for e in learner.js_errors if "status of 404" not in e]

        # on the phone the page itself never scrolls sideways; only the grid does
        phone_context, phone = new_page(browser, viewport={"width": 390, "height": 844})
        contexts.append(phone_context)
        phone.goto(f"{live_server.url}/en/classes/")
        log_in(phone, "sensei", "pw-sensei-1")
        phone.goto(teacher.url)
        widths = phone.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1]
        phone.locator(".class-grid-scroll").focus()  # the grid scrolls from the keyboard
        phone.keyboard.press("ArrowRight")
        # (scrolling may be animated: wait until it has moved, or fail after the timeout)
        phone.wait_for_function(
            "() => document.querySelector('.class-grid-scroll').scrollLeft > 0", timeout=5_000
        )
        screenshot(phone, "class-dashboard-phone")
        assert teacher.js_errors == [] and learner.js_errors == [] and phone.js_errors == []
    finally:
        for context in contexts:
            context.close()
