"""Accounts: log-in attempts limited per client and per account (counted before the password is
checked, with the real Redis cache), password validators on sign-up, the session key rotated at
log-in."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import translation
from django.utils.html import escape

from quiz.models import Attempt, Learner

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-phrase-42"
LOGIN = "/{lang}/accounts/login/"


def unique(prefix: str) -> str:
    """A name no earlier run used: the limits' counts live in Redis for their whole window."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def an_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


@pytest.fixture
def limits(settings):
    # A window of a day: the counts below cannot straddle two windows.
    settings.ACCOUNTS_LOGIN_RATE_PER_IP = "4/d"
    settings.ACCOUNTS_LOGIN_RATE_PER_ACCOUNT = "3/d"


@pytest.fixture
def password_checks():
    """How many times a password was checked (Django sends one of these signals per check)."""
    checked = []

    def count(sender, **kwargs):
        checked.append(kwargs)

    user_login_failed.connect(count)
    user_logged_in.connect(count)
    yield checked
    user_login_failed.disconnect(count)
    user_logged_in.disconnect(count)


def account(username: str):
    return get_user_model().objects.create_user(username=username, password=PASSWORD)


def log_in(client, username, password, *, ip, lang="en"):
    return client.post(
        LOGIN.format(lang=lang), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def without_tokens(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", html)  # htmx's header, in the page


def test_log_in_is_limited_per_account_before_the_password_is_checked(
    client, limits, password_checks
):
    user = account(unique("aiko"))
    for _attempt in range(3):  # each from another address: the per-client limit is not reached
        response = log_in(client, user.username, "wrong", ip=an_ip())
        assert response.status_code == 200  # the form again, with its error
    assert len(password_checks) == 3

    # The fourth attempt is refused before any password check, right password or wrong, and
    # the two answers are the same: a locked account cannot be probed.
    right = log_in(client, user.username, PASSWORD, ip=an_ip())
    wrong = log_in(client, f"  {user.username.upper()} ", "wrong", ip=an_ip())  # same account
    assert right.status_code == wrong.status_code == 429
    assert len(password_checks) == 3
    assert "_auth_user_id" not in client.session
    assert 1 <= int(right["Retry-After"]) <= 24 * 3600
    assert without_tokens(right.content.decode()) == without_tokens(wrong.content.decode())
    assert "There were too many attempts to log in" in right.content.decode()
    assert "Your password was not checked." in right.content.decode()

    # In the learner's language.
    japanese = log_in(client, user.username, PASSWORD, ip=an_ip(), lang="ja")
    assert japanese.status_code == 429 and japanese["Retry-After"]
    assert "ログインの試行が多すぎます" in japanese.content.decode()
    assert '<html lang="ja"' in japanese.content.decode()

    # Another account is not locked by this one.
    other = account(unique("kenji"))
    assert log_in(client, other.username, PASSWORD, ip=an_ip()).status_code == 302


def test_log_in_is_limited_per_client(client, limits, password_checks):
    ip = an_ip()
    for _attempt in range(4):  # four different accounts from one address
        assert log_in(client, unique("nobody"), "wrong", ip=ip).status_code == 200
    user = account(unique("aiko"))
    refused = log_in(client, user.username, PASSWORD, ip=ip)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert len(password_checks) == 4
    # The same account from another address still logs in.
    assert log_in(client, user.username, PASSWORD, ip=an_ip()).status_code == 302


def test_log_in_still_works_when_the_cache_is_down(client, settings, limits):
    """Redis stopped: nobody is locked out (the limit is not counted, and a warning logged)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing listens
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    user = account(unique("aiko"))
    for _attempt in range(5):  # past both limits, had they been counted
        assert log_in(client, user.username, "wrong", ip="10.9.9.9").status_code == 200
    assert log_in(client, user.username, PASSWORD, ip="10.9.9.9").status_code == 302


def signup(client, password, *, lang="en"):
    username = unique("mika")
    response = client.post(
        f"/{lang}/accounts/signup/",
        {"username": username, "password1": password, "password2": password},
    )
    return username, response


def validator_messages(password: str, lang: str) -> list[str]:
    with translation.override(lang):
        try:
            password_validation.validate_password(password)
        except ValidationError as error:
            return list(error.messages)
    return []


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("password", ["kx7#q", "password", "12345678901"])
def test_sign_up_refuses_a_weak_password_with_the_validators_message(client, lang, password):
    messages = validator_messages(password, lang)
    assert messages  # too short, too common, or entirely numeric
    username, response = signup(client, password, lang=lang)
    assert response.status_code == 400
    html = response.content.decode()
    for message in messages:
        assert escape(message) in html, message
    assert not get_user_model().objects.filter(username=username).exists()


def test_sign_up_accepts_a_good_password(client):
    username, response = signup(client, PASSWORD)
    assert response.status_code == 302
    assert get_user_model().objects.filter(username=username).exists()


def test_log_in_rotates_the_session_key(client, glossary):
    # An anonymous learner with progress in this browser's session.
    assert client.post("/en/terms/softmax/quiz/start/").status_code == 302
    old_key = client.cookies["sessionid"].value
    attempt = Attempt.objects.get(learner__user__isnull=True)
    user = account(unique("aiko"))

    assert log_in(client, user.username, PASSWORD, ip=an_ip()).status_code == 302
    new_key = client.cookies["sessionid"].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    attempt.refresh_from_db()
    assert attempt.learner == Learner.objects.get(user=user)  # the progress came along

    # The new key is logged in; the old one (a stolen or fixed cookie) is not.
    logged_in = client.get("/en/progress/")
    assert logged_in.wsgi_request.user == user
    assert "Log out" in logged_in.content.decode()
    thief = Client()
    thief.cookies["sessionid"] = old_key
    stolen = thief.get("/en/progress/")
    assert stolen.status_code == 200 and not stolen.wsgi_request.user.is_authenticated
    assert "Log out" not in stolen.content.decode()
