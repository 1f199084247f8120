"""A whole three-question check for `transformer` in real Chromium."""

import re

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def correct_key(page):
    """The right answer, looked up on the server side (the page never holds it)."""
    from quiz.models import Attempt

    attempt = Attempt.objects.order_by("-started_at").first()
    item = attempt.items.filter(answered_at__isnull=True).order_by("position").first()
    return item.question.correct_key, item.choice_order


def test_whole_check_with_one_right_and_one_wrong(
    live_server, glossary_tx, celery_worker_process, page
):
    page.goto(f"{live_server.url}/en/terms/transformer/")
    node = page.locator('svg.term-graph a.node.current[data-slug="transformer"]')
    assert node.get_attribute("data-mastery") == "not_started"

    page.get_by_role("button", name="Start the 3-question check").click()
    page.wait_for_selector("#quiz-box .question-form")
    assert "1 / 3" in page.locator("#quiz-box .counter").inner_text()

    # 1: right, but guessing. Without a confidence the browser does not send the answer.
    key, _order = correct_key(page)
    page.locator(f'#quiz-box input[name="choice"][value="{key}"]').check()
    page.get_by_role("button", name="Answer").click()
    guess = page.locator('#quiz-box input[name="confidence"][value="guess"]')
    assert guess.evaluate("el => el.validity.valueMissing")
    assert page.locator("#quiz-box .feedback").count() == 0
    page.get_by_role("radio", name="Guessing").check()
    page.get_by_role("button", name="Answer").click()
    page.wait_for_selector('#quiz-box .feedback[data-correct="true"]')
    assert "You said: Guessing" in page.locator("#quiz-box .confidence-said").inner_text()
    assert page.locator("#quiz-box .explained li").count() >= 2
    assert (
        page.locator("#quiz-box .learn-more a")
        .get_attribute("href")
        .startswith("/en/terms/transformer/?tier=")
    )
    screenshot(page, "quiz-feedback-right")

    # 2: wrong, chosen with the keyboard
    page.get_by_role("button", name="Next question").click()
    page.wait_for_selector("#quiz-box .question-form")
    key, order = correct_key(page)
    wrong = next(k for k in order if k != key)
    page.locator(f'#quiz-box input[name="choice"][value="{wrong}"]').focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # into the "how sure" group: its first radio
    page.keyboard.press("Space")  # guessing
    page.keyboard.press("ArrowRight")  # unsure
    page.keyboard.press("ArrowRight")  # sure
    assert page.locator('#quiz-box input[name="confidence"][value="sure"]').is_checked()
    page.keyboard.press("Enter")
    page.wait_for_selector('#quiz-box .feedback[data-correct="false"]')
    assert page.locator("#quiz-box .explained li.is-correct").count() == 1
    assert page.locator("#quiz-box .explained li.is-chosen").count() == 1
    screenshot(page, "quiz-feedback-wrong")

    # 3: right
    page.get_by_role("button", name="Next question").click()
    page.wait_for_selector("#quiz-box .question-form")
    key, _order = correct_key(page)
    page.locator(f'#quiz-box input[name="choice"][value="{key}"]').check()
    page.locator('#quiz-box input[name="confidence"][value="unsure"]').check()
    page.get_by_role("button", name="Answer").click()
    page.wait_for_selector("#quiz-box .feedback")
    page.get_by_role("button", name="See your score").click()
    page.wait_for_selector("#quiz-box .summary")
    assert page.locator("#quiz-box .summary").get_attribute("data-score") == "2"
    assert page.locator("#quiz-box .summary .feedback").count() == 1
    assert page.locator("#quiz-box .lucky-guesses li").count() == 1
    assert page.locator("#quiz-box .confident-mistakes li").count() == 1
    page.locator("#quiz-box .confident-mistakes a").click()  # to the explanation below
    assert page.evaluate("location.hash").startswith("#mistake-")

    # "My progress": how often each confidence was right, on a phone
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/en/progress/")
    table = page.locator("table.calibration-table")
    assert "1 of 1 right" in table.locator('tr[data-confidence="guess"]').inner_text()
    assert "0 of 1 right" in table.locator('tr[data-confidence="sure"]').inner_text()
    fits = page.evaluate(
        "() => document.querySelector('section.calibration').getBoundingClientRect().right"
        " <= window.innerWidth"
    )
    assert fits
    screenshot(page, "progress-calibration-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "quiz-summary")

    # the graph node now shows the new mastery colour
    page.goto(f"{live_server.url}/en/terms/transformer/")
    node = page.locator('svg.term-graph a.node.current[data-slug="transformer"]')
    assert node.get_attribute("data-mastery") == "familiar"
    fill = page.evaluate(
        "() => getComputedStyle(document.querySelector('svg.term-graph a.node.current rect')).fill"
    )
    assert fill == "rgb(147, 197, 253)"  # --familiar
    assert page.js_errors == []


def test_predict_then_observe_shows_the_live_attention(
    live_server, glossary_tx, celery_worker_process, page
):
    from quiz.models import Attempt, AttemptQuestion, Question

    observe = Question.objects.filter(term__slug="self-attention").exclude(observe="").first()
    page.goto(f"{live_server.url}/en/terms/self-attention/quiz/")
    page.get_by_role("button", name="Start the 3-question check").click()
    page.wait_for_selector("#quiz-box .question-form")
    # make the first drawn question the observe one (the draw is random)
    attempt = Attempt.objects.get()
    first = attempt.items.get(position=0)
    if first.question_id != observe.pk:
        AttemptQuestion.objects.filter(attempt=attempt, question=observe).delete()
        first.question = observe
        first.choice_order = [c["key"] for c in observe.texts.first().choices]
        first.save()
    page.goto(f"{live_server.url}/en/terms/self-attention/quiz/?attempt={attempt.id}")
    assert page.locator(".observe-sentence").count() == 1
    page.locator(f'input[name="choice"][value="{observe.correct_key}"]').check()
    page.locator('input[name="confidence"][value="sure"]').check()
    page.get_by_role("button", name="Answer").click()
    page.wait_for_selector(".observe")
    page.wait_for_selector(".observe table.model-grid a.thumb svg", timeout=120_000)
    assert page.locator(".observe table.model-grid a.thumb svg.thumb-svg").count() == 72
    assert page.locator(".observe .thumb-role").count() == 72  # each head's role, in one request
    screenshot(page, "quiz-observe")
    assert re.search(
        r"/demo/runs/[0-9a-f-]+/", page.locator(".observe a").first.get_attribute("href")
    )
