"""The quiz as a learner meets it: htmx fragments and full pages, in both languages."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from lessons.models import Term
from quiz.models import Attempt, AttemptQuestion, Learner, ReviewCard, TermProgress

pytestmark = pytest.mark.django_db


def start(client, lang="en", slug="softmax", htmx=False):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(f"/{lang}/terms/{slug}/quiz/start/", **headers)


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def current_item(attempt):
    return attempt.items.filter(answered_at__isnull=True).order_by("position").first()


def post_answer(client, attempt, item, key, lang="en", htmx=False, confidence="sure", **extra):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    data = {"position": item.position, "choice": key, "confidence": confidence, **extra}
    return client.post(f"/{lang}/quiz/attempts/{attempt.id}/answer/", data, **headers)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_full_page_flow_without_javascript(client, glossary, lang):
    response = start(client, lang)
    assert response.status_code == 302
    attempt = Attempt.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert "1 / 3" in page and 'type="radio" name="choice"' in page
    for n in range(3):
        item = current_item(attempt)
        key = (
            item.question.correct_key
            if n != 1
            else next(k for k in item.choice_order if k != item.question.correct_key)
        )
        html = post_answer(client, attempt, item, key, lang).content.decode()
        assert "<html" in html and 'class="feedback' in html
        assert f"?tier={item.question.section}#tier-{item.question.section}" in html
    summary = client.get(f"/{lang}/terms/softmax/quiz/?attempt={attempt.id}").content.decode()
    assert 'data-score="2"' in summary
    assert summary.count('class="feedback') == 1  # the one mistake, explained again


def test_htmx_flow_returns_fragments(client, glossary):
    html = start(client, htmx=True).content.decode()
    assert "<html" not in html and "1 / 3" in html
    attempt = Attempt.objects.get()
    item = current_item(attempt)
    feedback = post_answer(
        client, attempt, item, item.question.correct_key, htmx=True
    ).content.decode()
    assert "<html" not in feedback and 'data-correct="true"' in feedback
    nxt = client.get(f"/en/terms/softmax/quiz/?attempt={attempt.id}", HTTP_HX_REQUEST="true")
    assert "2 / 3" in nxt.content.decode() and "<html" not in nxt.content.decode()


def test_no_page_holds_the_answer_before_answering(client, glossary):
    start(client)
    attempt = Attempt.objects.get()
    html = client.get(f"/en/terms/softmax/quiz/?attempt={attempt.id}").content.decode()
    item = current_item(attempt)
    texts = item.question.texts.get(lang="en")
    page_text = _text(html)
    for choice in texts.choices:
        # Compare words, not markup: an explanation that opens with a formula shares its
        # MathML opening tag with the question's own formulas.
        assert _text(choice["explanation_html"])[:60] not in page_text
    assert "correct" not in re.sub(r"<script.*?</script>", "", html).lower().replace(
        "incorrect", ""
    )


@pytest.mark.parametrize("htmx", [False, True])
def test_tampering_answers_400_with_a_message(client, glossary, htmx):
    start(client)
    attempt = Attempt.objects.get()
    item = current_item(attempt)
    response = post_answer(client, attempt, item, "not-a-choice", htmx=htmx)
    assert response.status_code == 400 and "Choose one of the answers" in response.content.decode()
    response = client.post(
        f"/en/quiz/attempts/{attempt.id}/answer/",
        {"position": 9, "choice": "a", "confidence": "sure"},
    )
    assert response.status_code == 400
    post_answer(client, attempt, item, item.question.correct_key)
    response = post_answer(client, attempt, item, item.question.correct_key)
    assert response.status_code == 400 and "already been answered" in response.content.decode()
    response = client.post("/en/quiz/attempts/not-a-uuid/answer/", {"position": 0, "choice": "a"})
    assert response.status_code == 400
    assert AttemptQuestion.objects.filter(answered_at__isnull=False).count() == 1


def test_someone_elses_attempt_is_refused(client, glossary):
    start(client)
    attempt = Attempt.objects.get()
    other = client.__class__()
    response = post_answer(other, attempt, current_item(attempt), "a")
    assert response.status_code == 400
    assert not AttemptQuestion.objects.filter(answered_at__isnull=False).exists()


def test_quiz_get_and_wrong_method(client, glossary):
    assert client.get("/ja/terms/softmax/quiz/").status_code == 200
    assert client.get("/en/terms/softmax/quiz/start/").status_code == 405
    assert client.get("/en/terms/nope/quiz/").status_code == 404


def finish(client, slug, right):
    start(client, slug=slug)
    attempt = Attempt.objects.filter(term__slug=slug).order_by("-started_at").first()
    for n in range(3):
        item = current_item(attempt)
        key = (
            item.question.correct_key
            if n < right
            else next(k for k in item.choice_order if k != item.question.correct_key)
        )
        post_answer(client, attempt, item, key)


def test_progress_colours_the_term_page_map_and_progress_page(client, glossary):
    finish(client, "linear-algebra", right=2)
    term_page = client.get("/en/terms/linear-algebra/").content.decode()
    assert 'data-mastery="familiar"' in term_page
    assert re.search(r'class="node current mastery-familiar"', term_page)
    home = client.get("/en/").content.decode()
    assert re.search(r'class="node term mastery-familiar" data-slug="linear-algebra"', home)
    progress = client.get("/en/progress/").content.decode()
    # linear-algebra is familiar, so what needs only it is suggested next
    suggestions = progress.split('class="suggestions"')[1].split("</ul>")[0]
    assert "/en/terms/neural-network/" in suggestions and "/en/terms/softmax/" in suggestions
    assert "/en/terms/self-attention/" not in suggestions


def test_review_page_serves_due_questions_with_feedback(client, glossary):
    finish(client, "softmax", right=0)  # wrong answers are due again within minutes
    from datetime import timedelta

    from django.utils import timezone

    from quiz.models import ReviewCard

    ReviewCard.objects.update(
        due=timezone.now() - timedelta(minutes=1),
        last_reviewed_at=timezone.now() - timedelta(hours=1),
    )
    page = client.get("/ja/review/").content.decode()
    assert 'name="question"' in page
    question_id = int(re.search(r'name="question" value="(\d+)"', page).group(1))
    card = ReviewCard.objects.get(question_id=question_id)
    assert page.count('name="confidence"') == 3
    html = client.post(
        "/ja/review/answer/",
        {"question": question_id, "choice": card.question.correct_key, "confidence": "guess"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-correct="true"' in html and "<html" not in html
    assert "回答時の自信：当てずっぽう" in html
    again = client.post(
        "/ja/review/answer/",
        {"question": question_id, "choice": card.question.correct_key, "confidence": "sure"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'class="notice"' in again  # counted once
    response = client.post(
        "/ja/review/answer/", {"question": 999999, "choice": "a", "confidence": "sure"}
    )
    assert response.status_code == 400


def test_signup_merges_the_sessions_progress(client, glossary, django_user_model):
    finish(client, "softmax", right=2)
    anonymous = Learner.objects.get()
    response = client.post(
        "/en/accounts/signup/",
        {
            "username": "aiko",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
    )
    assert response.status_code == 302
    user = django_user_model.objects.get(username="aiko")
    assert (
        TermProgress.objects.get(
            learner__user=user, term=Term.objects.get(slug="softmax")
        ).best_score
        == 2
    )
    assert not Learner.objects.filter(pk=anonymous.pk).exists()
    client.post("/en/accounts/logout/")
    client.post("/en/accounts/login/", {"username": "aiko", "password": "a-long-pass-phrase-42"})
    assert 'data-mastery="familiar"' in client.get("/en/terms/softmax/").content.decode()


# --- confidence before feedback -----------------------------------------------------------------


def test_the_answer_form_asks_how_sure_before_feedback(client, glossary):
    start(client)
    attempt = Attempt.objects.get()
    html = client.get(f"/en/terms/softmax/quiz/?attempt={attempt.id}").content.decode()
    form = html.split('class="question-form"')[1].split("</form>")[0]
    radios = re.findall(r'<input type="radio" name="confidence" value="(\w+)" required>', form)
    assert radios == ["guess", "unsure", "sure"]  # inside the answer form, none preselected
    assert "How sure are you?" in form and "Guessing" in form and "Sure" in form
    assert 'name="unsure"' not in html


@pytest.mark.parametrize(("htmx", "confidence"), [(False, None), (True, ""), (False, "certain")])
def test_an_answer_without_a_confidence_is_refused_and_the_choice_kept(
    client, glossary, htmx, confidence
):
    start(client)
    attempt = Attempt.objects.get()
    item = current_item(attempt)
    data = {"position": item.position, "choice": item.question.correct_key}
    if confidence is not None:
        data["confidence"] = confidence
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(f"/en/quiz/attempts/{attempt.id}/answer/", data, **headers)
    html = response.content.decode()
    assert response.status_code == 400
    assert "Say how sure you are (guessing, unsure or sure)" in html
    assert ("<html" in html) is not htmx
    # the same question again, the choice still checked, the message tied to the group
    assert f'name="choice" value="{item.question.correct_key}" required checked' in html
    assert 'aria-describedby="answer-error"' in html and 'id="answer-error"' in html
    assert f'name="position" value="{item.position}"' in html
    item.refresh_from_db()
    assert item.answered_at is None and item.chosen_key == "" and item.confidence == ""
    assert not AttemptQuestion.objects.filter(answered_at__isnull=False).exists()
    assert not ReviewCard.objects.exists()
    # then with a confidence it is recorded
    ok = post_answer(client, attempt, item, item.question.correct_key, confidence="unsure")
    assert ok.status_code == 200 and "You said: Unsure" in ok.content.decode()
    item.refresh_from_db()
    assert item.confidence == "unsure" and item.correct is True


def test_a_japanese_learner_is_refused_in_japanese(client, glossary):
    start(client, "ja")
    attempt = Attempt.objects.get()
    item = current_item(attempt)
    response = client.post(
        f"/ja/quiz/attempts/{attempt.id}/answer/",
        {"position": item.position, "choice": item.question.correct_key},
    )
    assert response.status_code == 400
    assert "どのくらい自信があるか" in response.content.decode()


def test_a_review_answer_without_a_confidence_is_refused_and_shown_again(client, glossary):
    finish(client, "softmax", right=0)
    ReviewCard.objects.update(
        due=timezone.now() - timedelta(minutes=1),
        last_reviewed_at=timezone.now() - timedelta(hours=1),
    )
    card = ReviewCard.objects.order_by("pk").first()
    before = (card.due, card.reviews)
    response = client.post(
        "/en/review/answer/",
        {"question": card.question_id, "choice": card.question.correct_key},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 400 and "<html" not in html
    assert "Say how sure you are" in html
    assert f'name="question" value="{card.question_id}"' in html
    assert f'value="{card.question.correct_key}" required checked' in html
    card.refresh_from_db()
    assert (card.due, card.reviews) == before


def test_the_summary_lists_lucky_guesses_and_confident_mistakes(client, glossary):
    start(client)
    attempt = Attempt.objects.get()
    plan = [(True, "guess"), (False, "sure"), (False, "unsure")]  # right/wrong, confidence
    prompts = []
    for right, confidence in plan:
        item = current_item(attempt)
        correct = item.question.correct_key
        key = correct if right else next(k for k in item.choice_order if k != correct)
        post_answer(client, attempt, item, key, confidence=confidence)
        prompts.append(item.question.texts.get(lang="en").prompt_html)
    html = client.get(f"/en/terms/softmax/quiz/?attempt={attempt.id}").content.decode()
    lucky = html.split('class="lucky-guesses"')[1].split("</section>")[0]
    confident = html.split('class="confident-mistakes"')[1].split("</section>")[0]
    assert "Lucky guesses" in lucky and prompts[0] in lucky
    assert prompts[1] not in lucky and prompts[2] not in lucky
    assert "Correct answer:" in lucky  # with why the guess was right
    assert "Confident mistakes" in confident and prompts[1] in confident
    assert prompts[0] not in confident and prompts[2] not in confident  # unsure is not "sure"
    question_id = AttemptQuestion.objects.get(attempt=attempt, position=1).question_id
    assert f'href="#mistake-{question_id}"' in confident and f'id="mistake-{question_id}"' in html


def test_the_summary_has_no_lists_when_confidence_matched(client, glossary):
    finish(client, "softmax", right=3)
    attempt = Attempt.objects.get()
    html = client.get(f"/en/terms/softmax/quiz/?attempt={attempt.id}").content.decode()
    assert 'data-score="3"' in html
    assert "lucky-guesses" not in html and "confident-mistakes" not in html


def test_progress_shows_calibration_recent_and_before(client, glossary):
    assert "Answer a quiz to see how often" in client.get("/en/progress/").content.decode()
    finish(client, "softmax", right=2)  # sure: 2 of 3, now
    earlier = Attempt.objects.get()
    AttemptQuestion.objects.filter(attempt=earlier).update(
        answered_at=timezone.now() - timedelta(days=45)
    )
    finish(client, "linear-algebra", right=3)  # sure: 3 of 3, now
    html = client.get("/en/progress/").content.decode()
    table = html.split('class="progress-table calibration-table"')[1].split("</table>")[0]
    sure = table.split('data-confidence="sure"')[1].split("</tr>")[0]
    recent = sure.split('data-period="recent">')[1].split("</td>")[0]
    before = sure.split('data-period="before">')[1].split("</td>")[0]
    change = sure.split('data-period="change">')[1].split("</td>")[0]
    assert "100%" in recent and "3 of 3 right" in recent
    assert "67%" in before and "2 of 3 right" in before
    assert change == "+33 points"
    guess = table.split('data-confidence="guess"')[1].split("</tr>")[0]
    assert guess.count("—") == 3  # no guesses yet
    assert "Last 30 days" in table
    ja = client.get("/ja/progress/").content.decode()
    assert "自信の度合いと正解率" in ja and "3 問中 3 問正解" in ja
