"""Abuse and security: rate limits, CSP, escaping, CSRF, production settings, the admin."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["/ja/", "/en/terms/transformer/", "/ja/terms/softmax/quiz/", "/en/demo/", "/en/review/",
         "/en/progress/", "/en/accounts/login/"]  # fmt: skip


@pytest.mark.django_db
def test_every_page_has_a_strict_content_security_policy(client, glossary):
    for url in PAGES:
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, url
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script on {url}"
        assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {url}"
        assert not re.search(r"\sstyle=", html), f"inline style on {url}"
        assert "http://" not in re.sub(r'href="http[^"]*"|xmlns="[^"]*"|>http[^<]*<', "", html)


def test_no_template_marks_user_text_safe():
    """|safe only on HTML we rendered ourselves from authored content or numbers."""
    allowed = re.compile(r"\{\{\s*[\w.]*(_html|svg)\|safe\s*\}\}")
    for path in (ROOT / "templates").rglob("*.html"):
        for use in re.findall(r"\{\{[^}]*\|safe[^}]*\}\}", path.read_text()):
            assert allowed.fullmatch(use), f"{path.name}: {use}"
    for path in (ROOT / "engine").glob("*.py"):
        text = path.read_text()
        for line in text.splitlines():
            if "mark_safe(" in line and "def " not in line:
                assert "escape" in text and "# noqa: S308" in line, (path.name, line)


@pytest.mark.django_db
def test_demo_and_api_are_rate_limited_with_a_retry_hint(client, glossary, settings):
    settings.ENGINE_RATE_LIMIT = "3/m"
    cache.clear()
    for n in range(3):
        assert client.post("/en/demo/", {"text": f"Sentence {n} for the limit."}).status_code == 302
    response = client.post("/en/demo/", {"text": "One too many."})
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 0 < wait <= 60
    assert f"wait {wait} seconds" in response.content.decode()
    assert response.content.decode().count("One too many.") == 1  # the text is kept
    api = client.post("/api/v1/attention", {"text": "API too."}, content_type="application/json")
    assert api.status_code == 429 and "retry in" in api.json()["error"]
    assert int(api["Retry-After"]) > 0
    # another client is not affected
    other = client.__class__(REMOTE_ADDR="10.9.8.7")
    assert other.post("/en/demo/", {"text": "Someone else."}).status_code == 302


def test_upload_size_is_capped():
    assert 0 < django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 1024 * 1024


def _manage(*args, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_KEY"))}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


PROD = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "ALLOWED_HOSTS": "attention-lab.example",
    "DATABASE_URL": "sqlite:////tmp/attention-lab-deploy-check.sqlite3",
}


def test_production_settings_pass_check_deploy_with_no_warning():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env_extra={**PROD, "SECRET_KEY": "x9" * 25 + "-a-long-random-production-secret"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", env_extra=PROD)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_admin_requires_staff(client, django_user_model):
    assert client.get("/admin/quiz/question/").status_code == 302
    staff = django_user_model.objects.create_user(
        "editor", password="pw-123456-long", is_staff=True, is_superuser=True
    )
    client.force_login(staff)
    assert client.get("/admin/quiz/question/").status_code == 200
    assert client.get("/admin/engine/attentionrun/").status_code == 200
