"""Races between two clicks, shown with real concurrent requests to a live server: threads that
start together at a ``threading.Barrier``, each request on its own connection (so its own
database connection in the server), against a real Redis and the real database.

- two answers to one quiz question at the same moment count once;
- a log-in while a quiz answer is in flight merges the progress once, and so does a double
  click on "log in";
- two submissions of one sentence at the same moment, and a double click on "run" in the demo
  form, make one run.
"""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookies import SimpleCookie

import pytest
import redis
from django.contrib.auth import get_user_model

from engine.models import AttentionRun
from quiz.models import Attempt, AttemptQuestion, Learner, ReviewCard, TermProgress

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-pass-phrase-42"
SLUG = "softmax"


# --- a browser made of plain requests ------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict
    body: str
    cookies: SimpleCookie


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the test reads the 302 itself


_opener = urllib.request.build_opener(_NoRedirect)


class Browser:
    """One learner's browser: its cookies, and each request on a new connection."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.cookies: dict[str, str] = {}

    def send(self, method: str, path: str, data: dict | None = None, *, cookies=None) -> Response:
        cookies = dict(self.cookies if cookies is None else cookies)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = self.base_url + path
        request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with _opener.open(request, timeout=60) as answer:  # our live server
                status, raw, head = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as error:
            status, raw, head = error.code, error.read(), error.headers
        jar = SimpleCookie()
        for value in head.get_all("Set-Cookie") or []:
            jar.load(value)
        return Response(status, dict(head), raw.decode(errors="replace"), jar)

    def keep(self, response: Response) -> Response:
        """Take the cookies a response set (or deleted), as a browser would."""
        for name, morsel in response.cookies.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return response

    def get(self, path: str) -> Response:
        return self.keep(self.send("GET", path))

    def post(self, path: str, data: dict) -> Response:
        return self.keep(self.send("POST", path, self.form(data)))

    def form(self, data: dict) -> dict:
        if "csrftoken" not in self.cookies:
            self.get("/en/accounts/login/")  # a page with a form sets the CSRF cookie
        return {"csrfmiddlewaretoken": self.cookies["csrftoken"], **data}


def together(*calls):
    """Run the calls at the same moment, each in its own thread; their results, in order."""
    start = threading.Barrier(len(calls))

    def go(call):
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


# --- the quiz ------------------------------------------------------------------------------------


def start_quiz(browser: Browser) -> Attempt:
    """An anonymous learner starts a quiz in ``browser``: its newest attempt."""
    response = browser.post(f"/en/terms/{SLUG}/quiz/start/", {})
    assert response.status == 302
    assert "sessionid" in browser.cookies
    return Attempt.objects.filter(term__slug=SLUG).order_by("-started_at").first()


def answer_form(browser: Browser, attempt: Attempt, position: int) -> tuple[str, dict]:
    item = AttemptQuestion.objects.get(attempt=attempt, position=position)
    data = browser.form(
        {"position": position, "choice": item.choice_order[0], "confidence": "sure"}
    )
    return f"/en/quiz/attempts/{attempt.id}/answer/", data


def answer(browser: Browser, attempt: Attempt, position: int) -> Response:
    path, data = answer_form(browser, attempt, position)
    return browser.keep(browser.send("POST", path, data))


def test_two_concurrent_answers_to_one_question_count_once(live_server, glossary_tx):
    browser = Browser(live_server.url)
    attempt = start_quiz(browser)
    path, data = answer_form(browser, attempt, 0)

    for _round in range(2):  # the second round: both come after the question was answered
        first, second = together(
            lambda: browser.send("POST", path, data), lambda: browser.send("POST", path, data)
        )
        statuses = sorted([first.status, second.status])
        if _round == 0:
            assert statuses == [200, 400], (first.body[-500:], second.body[-500:])
            refused = first if first.status == 400 else second
        else:
            assert statuses == [400, 400]
            refused = first
        assert "This question has already been answered." in refused.body

    item = AttemptQuestion.objects.get(attempt=attempt, position=0)
    assert item.answered_at is not None and item.chosen_key == data["choice"]
    card = ReviewCard.objects.get(learner=attempt.learner, question=item.question)
    assert card.reviews == 1  # scheduled once
    attempt.refresh_from_db()
    assert attempt.finished_at is None  # two more questions to go


def make_account(username: str) -> Learner:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    return Learner.objects.create(user=user)


def log_in(browser: Browser, username: str, *, cookies=None) -> Response:
    data = browser.form({"username": username, "password": PASSWORD})
    return browser.send("POST", "/en/accounts/login/", data, cookies=cookies)


def assert_merged_once(account: Learner, *, attempts: list[Attempt], finished: int, answers: int):
    """Everything the anonymous learners did is the account's, each thing once."""
    assert not Learner.objects.filter(user__isnull=True).exists()  # merged, then deleted
    assert set(Attempt.objects.values_list("learner_id", flat=True)) == {account.pk}
    assert Attempt.objects.filter(pk__in=[a.pk for a in attempts]).count() == len(attempts)
    answered = AttemptQuestion.objects.filter(attempt__in=attempts, answered_at__isnull=False)
    assert answered.count() == answers
    progress = TermProgress.objects.filter(learner=account, term__slug=SLUG).first()
    assert (progress.attempts if progress else 0) == finished
    assert Attempt.objects.filter(finished_at__isnull=False).count() == finished
    cards = ReviewCard.objects.filter(learner=account)
    # one card per question answered (a question drawn twice shares its card), never more
    questions = set(answered.values_list("question_id", flat=True))
    assert set(cards.values_list("question_id", flat=True)) == questions
    assert all(card.reviews >= 1 for card in cards)
    assert sum(card.reviews for card in cards) <= answers


# How much later the answer leaves than the log-in: at once (the answer, the quicker request,
# usually wins), a little later (they overlap in the server), much later (the log-in wins).
@pytest.mark.parametrize("answer_after_ms", [0, 15, 40, 200])
def test_log_in_while_an_answer_is_in_flight_merges_once(live_server, glossary_tx, answer_after_ms):
    """The last answer of an attempt (it finishes the attempt and records mastery) and a log-in
    of the same browser, at the same moment: the answer is counted before the merge moves it,
    or refused with a message after it (then the question waits, unanswered, in the account);
    never lost half-way, never counted twice, and no 5xx."""
    account = make_account(f"aiko{answer_after_ms}")
    browser = Browser(live_server.url)
    attempt = start_quiz(browser)
    for position in (0, 1):
        assert answer(browser, attempt, position).status == 200
    path, data = answer_form(browser, attempt, 2)
    login_data = browser.form({"username": account.user.username, "password": PASSWORD})

    def late_answer():
        time.sleep(answer_after_ms / 1000)
        return browser.send("POST", path, data)

    answered, logged_in = together(
        late_answer, lambda: browser.send("POST", "/en/accounts/login/", login_data)
    )

    assert logged_in.status == 302, logged_in.body[-500:]
    assert answered.status in (200, 400), answered.body[-500:]
    if answered.status == 400:
        assert "This quiz attempt does not exist or is not yours." in answered.body
    counted = answered.status == 200
    assert_merged_once(account, attempts=[attempt], finished=int(counted), answers=2 + int(counted))
    # Logged in, the learner sees the attempt as theirs, and can finish it if it was refused.
    browser.keep(logged_in)
    assert answer(browser, attempt, 2).status == (400 if counted else 200)
    assert_merged_once(account, attempts=[attempt], finished=1, answers=3)


def test_a_double_click_on_log_in_merges_once(live_server, glossary_tx):
    account = make_account("kenji")
    browser = Browser(live_server.url)
    attempt = start_quiz(browser)
    for position in (0, 1, 2):  # a finished attempt: mastery progress to merge
        assert answer(browser, attempt, position).status == 200
    second = start_quiz(browser)
    assert answer(browser, second, 0).status == 200
    assert Attempt.objects.filter(learner__user__isnull=True).count() == 2

    first, again = together(lambda: log_in(browser, "kenji"), lambda: log_in(browser, "kenji"))
    assert (first.status, again.status) == (302, 302), (first.body[-300:], again.body[-300:])
    assert_merged_once(account, attempts=[attempt, second], finished=1, answers=4)
    progress = TermProgress.objects.get(learner=account, term__slug=SLUG)
    assert (
        progress.best_score == AttemptQuestion.objects.filter(attempt=attempt, correct=True).count()
    )


# --- the live model ------------------------------------------------------------------------------


@pytest.fixture
def idle_broker(settings):
    """A Redis database that no worker reads (13: the engine's race tests use 14): what is
    published stays in the queue, to count."""
    url = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings.CELERY_BROKER_URL = url
    yield client
    client.flushdb()


def test_concurrent_submissions_of_one_sentence_make_one_run(live_server, idle_broker):
    clients = 6
    text = "Two learners sent this sentence at the same moment."

    def submit():
        request = urllib.request.Request(  # noqa: S310  our live server
            f"{live_server.url}/api/v1/attention",
            data=f'{{"text": "{text}"}}'.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  live server
            return response.status, response.read().decode()

    answers = together(*[submit] * clients)
    assert [status for status, _body in answers] == [202] * clients
    ids = {json.loads(body)["id"] for _status, body in answers}
    assert len(ids) == 1, ids
    assert AttentionRun.objects.count() == 1
    assert AttentionRun.objects.get().status == "queued"
    assert idle_broker.llen("inference") == 1  # sent to the workers once


def test_a_double_click_on_run_makes_one_run(live_server, idle_broker):
    browser = Browser(live_server.url)
    assert browser.get("/en/demo/").status == 200
    data = browser.form({"text": "A double click on the run button.", "model": "minilm"})

    first, second = together(
        lambda: browser.send("POST", "/en/demo/", data),
        lambda: browser.send("POST", "/en/demo/", data),
    )
    assert (first.status, second.status) == (302, 302), (first.body[-300:], second.body[-300:])
    run = AttentionRun.objects.get()  # exactly one
    assert first.headers["Location"] == second.headers["Location"] == f"/en/demo/runs/{run.id}/"
    assert idle_broker.llen("inference") == 1

    # A third click, later, while the run is still queued: the same run again, nothing sent.
    third = browser.send("POST", "/en/demo/", data)
    assert third.headers["Location"] == f"/en/demo/runs/{run.id}/"
    assert AttentionRun.objects.count() == 1 and idle_broker.llen("inference") == 1
