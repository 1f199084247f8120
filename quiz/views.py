import csv
import io
import json
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from engine import services as engine_services
from engine.models import AttentionRun
from engine.validation import InputError, validate_options
from lessons import selectors as lesson_selectors
from lessons.models import TIER_LABELS, Term

from . import selectors, services
from .models import Confidence, Mastery

log = logging.getLogger(__name__)


def _error(request, message: str, *, term=None):
    """A refused request: 400 with the message, as a fragment for htmx or as a page."""
    template = "quiz/error.html#message" if request.htmx else "quiz/error.html"
    return render(request, template, {"message": message, "term": term}, status=400)


def _lang() -> str:
    return get_language() or "ja"


def _quiz_url(slug: str, attempt=None) -> str:
    url = reverse("quiz:quiz", kwargs={"slug": slug})
    return f"{url}?attempt={attempt.id}" if attempt else url


def _step_context(attempt, items, lang) -> dict:
    """What comes next in an attempt: the next question, or the summary."""
    pending = [item for item in items if item.answered_at is None]
    context = {"attempt": attempt, "total": len(items), "term": attempt.term}
    if pending:
        item = pending[0]
        context["item"] = item
        context["number"] = item.position + 1
        context["question"] = selectors.question_view(
            question=item.question, lang=lang, order=item.choice_order
        )
    else:
        context["summary"] = True
        context["mistakes"] = [
            selectors.feedback_view(
                question=item.question,
                lang=lang,
                chosen_key=item.chosen_key,
                order=item.choice_order,
            )
            for item in items
            if not item.correct
        ]
        context.update(selectors.confidence_lists(items=items, lang=lang))
    return context


def _answer_again(request, attempt, message: str):
    """A valid choice without a valid confidence: the same question again (400), the choice
    kept, the message beside the confidence group. Nothing was recorded."""
    items = selectors.attempt_items(attempt=attempt)
    context = {"term": attempt.term, **_step_context(attempt, items, _lang())}
    context["answer_error"] = message
    item = context.get("item")
    if item is not None and request.POST.get("position", "").strip() == str(item.position):
        context["chosen"] = request.POST.get("choice")
    if request.htmx:
        return render(request, "quiz/quiz.html#step", context, status=400)
    return render(request, "quiz/quiz.html", {**context, "ref": _ref(attempt.term)}, status=400)


def _observe_run(question) -> AttentionRun | None:
    """For a "predict, then observe" question: the live model's run on its sentence (a finished
    one is reused at once). None when the live model is unavailable; the quiz goes on."""
    if not question.observe:
        return None
    try:
        options = validate_options(model=question.observe_model)
        run, _reused = engine_services.submit_run(text=question.observe, options=options)
    except (engine_services.Unavailable, InputError):
        return None
    return run


@require_GET
def quiz(request, slug: str):
    term = get_object_or_404(Term, slug=slug)
    lang = _lang()
    ref = lesson_selectors.term_ref(slug=slug, lang=lang)
    learner = selectors.current_learner(request=request)
    attempt = selectors.attempt_for(learner=learner, attempt_id=request.GET.get("attempt"))
    context = {"term": term, "ref": ref}
    if attempt is not None and attempt.term_id == term.pk:
        context.update(_step_context(attempt, selectors.attempt_items(attempt=attempt), lang))
    if request.htmx and not request.htmx.history_restore_request and "attempt" in context:
        return render(request, "quiz/quiz.html#step", context)
    return render(request, "quiz/quiz.html", context)


@require_POST
def start(request, slug: str):
    term = get_object_or_404(Term, slug=slug)
    learner = services.learner_for(request=request)
    try:
        attempt = services.start_attempt(learner=learner, term=term)
    except services.QuizError as error:
        return _error(request, error.message, term=term)
    if request.htmx:
        items = selectors.attempt_items(attempt=attempt)
        context = {"term": term, **_step_context(attempt, items, _lang())}
        return render(request, "quiz/quiz.html#step", context)
    return redirect(_quiz_url(slug, attempt))


@require_POST
def answer(request, attempt_id):
    learner = selectors.current_learner(request=request)
    attempt = selectors.attempt_for(learner=learner, attempt_id=attempt_id)
    if attempt is None:
        return _error(request, _no_attempt())
    try:
        item = services.answer(
            learner=learner,
            attempt_id=attempt.id,
            position=request.POST.get("position"),
            choice_key=request.POST.get("choice", ""),
            confidence=request.POST.get("confidence", ""),
        )
    except services.ConfidenceMissing as error:
        return _answer_again(request, attempt, error.message)
    except services.QuizError as error:
        return _error(request, error.message, term=attempt.term)
    lang = _lang()
    items = selectors.attempt_items(attempt=attempt)
    attempt.refresh_from_db()
    context = {
        "term": attempt.term,
        "attempt": attempt,
        "answered": item,
        "number": item.position + 1,
        "total": len(items),
        "feedback": selectors.feedback_view(
            question=item.question, lang=lang, chosen_key=item.chosen_key, order=item.choice_order
        ),
        "tier_label": TIER_LABELS[item.question.section],
        "confidence": item.get_confidence_display(),
        "finished": attempt.finished_at is not None,
        "observe_run": _observe_run(item.question),
    }
    if request.htmx:
        return render(request, "quiz/quiz.html#feedback", context)
    return render(request, "quiz/quiz.html", {**context, "ref": _ref(attempt.term)})


def _no_attempt() -> str:
    return gettext("This quiz attempt does not exist or is not yours.")


def _ref(term):
    return lesson_selectors.term_ref(slug=term.slug, lang=_lang())


@require_GET
def progress(request):
    lang = _lang()
    learner = selectors.current_learner(request=request)
    rows = selectors.progress_rows(learner=learner)
    index = lesson_selectors.glossary(lang=lang)
    mastery = {slug: row.mastery for slug, row in rows["progress"].items()}
    ok = {Mastery.FAMILIAR, Mastery.MASTERED}
    assigned = selectors.assigned_slugs(learner=learner)  # by a teacher of one of their classes
    suggestions = [
        ref
        for slug, ref in index.refs.items()
        if mastery.get(slug) not in ok
        and (
            slug in assigned
            or all(mastery.get(a) in ok for a, b in index.prerequisite_edges if b == slug)
        )
    ]
    suggestions.sort(key=lambda ref: ref.slug not in assigned)  # assigned first, stable
    terms = [
        {
            "ref": ref,
            "row": rows["progress"].get(slug),
            "mastery": mastery.get(slug, Mastery.NOT_STARTED),
        }
        for slug, ref in index.refs.items()
    ]
    counts = [  # highest level first
        (value, label, sum(1 for t in terms if t["mastery"] == value))
        for value, label in reversed(Mastery.choices)
    ]
    due = selectors.due_count(learner=learner, now=timezone.now())
    return render(
        request,
        "quiz/progress.html",
        {
            "terms": terms,
            "suggestions": suggestions[: max(6, len(assigned))],
            "assigned": assigned,
            "counts": counts,
            "cards": rows["cards"],
            "due": due,
            "anonymous_expiry_days": settings.QUIZ_ANONYMOUS_EXPIRY_DAYS,
            "calibration": selectors.calibration(learner=learner, now=timezone.now()),
        },
    )


def _download(content: str, *, content_type: str, extension: str) -> HttpResponse:
    """A file to save, named for today: ``attention-lab-progress-2025-01-31.json``."""
    filename = f"attention-lab-progress-{timezone.localdate():%Y-%m-%d}.{extension}"
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@never_cache
@require_GET
def export_json(request):
    """The learner's own data (account or this browser's session), as JSON."""
    learner = selectors.current_learner(request=request)
    data = selectors.learner_export(learner=learner, now=timezone.now())
    content = json.dumps(data, ensure_ascii=False, indent=2)
    return _download(content, content_type="application/json", extension="json")


@never_cache
@require_GET
def export_csv(request):
    """The same data as one CSV table, a row per answer, per term's progress and per card."""
    learner = selectors.current_learner(request=request)
    data = selectors.learner_export(learner=learner, now=timezone.now())
    buffer = io.StringIO()
    csv.writer(buffer).writerows(selectors.export_csv_rows(data=data))
    return _download(buffer.getvalue(), content_type="text/csv", extension="csv")


@never_cache
@require_http_methods(["GET", "POST"])
def delete_data(request):
    """GET: what would be deleted, and a form to confirm. POST: delete it all."""
    learner = selectors.current_learner(request=request)
    if request.method == "POST":
        deleted = services.delete_learner_data(learner=learner, session=request.session)
        if any(deleted.values()):
            messages.success(request, gettext("Your progress has been deleted."))
        else:
            messages.info(request, gettext("There was no progress to delete."))
        return redirect("quiz:progress")
    counts = selectors.learner_data_counts(learner=learner)
    return render(
        request, "quiz/delete_data.html", {"counts": counts, "empty": not any(counts.values())}
    )


@require_GET
def review(request):
    lang = _lang()
    learner = selectors.current_learner(request=request)
    now = timezone.now()
    card = selectors.next_due_card(learner=learner, now=now)
    context = {"due_count": selectors.due_count(learner=learner, now=now)}
    if card is not None:
        context["card"] = card
        context["question"] = selectors.question_view(question=card.question, lang=lang)
        context["ref"] = lesson_selectors.term_ref(slug=card.question.term.slug, lang=lang)
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "quiz/review.html#review-step", context)
    return render(request, "quiz/review.html", context)


def _review_again(request, learner, message: str):
    """A review answer without a valid confidence: the same card again (400), the choice kept."""
    lang = _lang()
    card = selectors.review_card(learner=learner, question_id=request.POST.get("question"))
    context = {
        "due_count": selectors.due_count(learner=learner, now=timezone.now()),
        "answer_error": message,
        "chosen": request.POST.get("choice"),
        "card": card,
        "question": selectors.question_view(question=card.question, lang=lang),
        "ref": lesson_selectors.term_ref(slug=card.question.term.slug, lang=lang),
    }
    if request.htmx:
        return render(request, "quiz/review.html#review-step", context, status=400)
    return render(request, "quiz/review.html", context, status=400)


@require_POST
def review_answer(request):
    learner = selectors.current_learner(request=request)
    if learner is None:
        return _error(request, _no_attempt())
    try:
        result = services.review_answer(
            learner=learner,
            question_id=request.POST.get("question"),
            choice_key=request.POST.get("choice", ""),
            confidence=request.POST.get("confidence", ""),
        )
    except services.ConfidenceMissing as error:
        return _review_again(request, learner, error.message)
    except services.QuizError as error:
        return _error(request, error.message)
    lang = _lang()
    context = {
        "feedback": selectors.feedback_view(
            question=result.question, lang=lang, chosen_key=result.chosen_key
        ),
        "tier_label": TIER_LABELS[result.question.section],
        "confidence": Confidence(result.confidence).label,
        "counted": result.counted,
        "review": True,
        "term": result.question.term,
        "due_count": selectors.due_count(learner=learner, now=timezone.now()),
    }
    if request.htmx:
        return render(request, "quiz/review.html#review-feedback", context)
    return render(request, "quiz/review.html", context)


def _login_username(group, request) -> str:
    """The account a log-in attempt names, as the rate limit counts it (case and spaces aside)."""
    field = get_user_model().USERNAME_FIELD
    return " ".join(request.POST.get(field, "").split()).casefold()[:150]


def login_limited(request) -> int:
    """Count this log-in attempt, per client (IP) and per account named, before any password is
    checked. 0 when it may go on, else the seconds to wait. With the cache (Redis) down nobody
    is locked out: the attempt goes on, unlimited, and a warning is logged."""
    limits = (
        ("accounts-login-ip", "ip", settings.ACCOUNTS_LOGIN_RATE_PER_IP),
        ("accounts-login-account", _login_username, settings.ACCOUNTS_LOGIN_RATE_PER_ACCOUNT),
    )
    wait = 0
    for group, key, rate in limits:
        try:
            usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
        except RedisError as error:
            log.warning("log-in rate limit not counted, the cache is down: %r", error)
            return 0
        if usage is not None and usage["should_limit"]:
            wait = max(wait, 1, int(usage["time_left"]))
    return wait


class LoginView(auth_views.LoginView):
    """Django's log-in (which rotates the session key), limited per client and per account.
    A limited attempt gets a 429 page in the learner's language with ``Retry-After``, whether
    its password is right or wrong: a locked account cannot be probed."""

    def post(self, request, *args, **kwargs):
        if wait := login_limited(request):
            response = render(
                request, "registration/login_limited.html", {"wait": wait}, status=429
            )
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)


@require_http_methods(["GET", "POST"])
def signup(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)  # the user_logged_in signal merges the session's progress
        target = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("quiz:progress")
        return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    return render(
        request,
        "registration/signup.html",
        {"form": form},
        status=400 if request.method == "POST" else 200,
    )
