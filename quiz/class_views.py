"""Classes: a teacher's list and dashboard (with its CSV), and the page a learner joins from.

Only a class's teacher sees its dashboard and CSV; anyone else gets the same 404 as for a class
that does not exist, so ids reveal nothing.
"""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors, services

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _lang() -> str:
    return get_language() or "ja"


def _taught_or_404(request, class_id):
    classroom = selectors.taught_classroom(user=request.user, classroom_id=class_id)
    if classroom is None:
        raise Http404(gettext("No such class."))
    return classroom


def _join_url(request, classroom) -> str:
    return request.build_absolute_uri(reverse("classes:join", args=[classroom.join_code]))


@login_required
@require_http_methods(["GET", "POST"])
def classes(request):
    """The classes the user teaches and the ones they joined; POST creates a class."""
    name, error = "", None
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            classroom = services.create_classroom(teacher=request.user, name=name)
        except services.QuizError as refused:
            error = refused.message
        else:
            messages.success(
                request,
                gettext("Class “%(name)s” created. Share its join code or link with your learners.")
                % {"name": classroom.name},
            )
            return redirect("classes:dashboard", class_id=classroom.pk)
    context = {**selectors.classrooms_for(user=request.user), "name": name, "error": error}
    return render(request, "quiz/classes.html", context, status=400 if error else 200)


def _dashboard_context(request, classroom, *, selected=None, error=None) -> dict:
    lang = _lang()
    grid = selectors.class_grid(classroom=classroom, lang=lang)
    selected = grid["assigned"] if selected is None else selected
    return {
        "classroom": classroom,
        "join_url": _join_url(request, classroom),
        "grid": grid,
        "stats": selectors.class_question_stats(classroom=classroom, lang=lang),
        "choices": [
            {"ref": column["ref"], "checked": column["ref"].slug in selected}
            for column in sorted(grid["columns"], key=lambda c: (c["ref"].layer, c["ref"].slug))
        ],
        "assign_error": error,
    }


@login_required
@require_GET
def dashboard(request, class_id):
    classroom = _taught_or_404(request, class_id)
    return render(request, "quiz/classes_dashboard.html", _dashboard_context(request, classroom))


@login_required
@require_POST
def assign(request, class_id):
    classroom = _taught_or_404(request, class_id)
    slugs = request.POST.getlist("terms")
    try:
        assigned = services.set_assignments(classroom=classroom, slugs=slugs)
    except services.QuizError as refused:
        context = _dashboard_context(request, classroom, selected=set(slugs), error=refused.message)
        return render(request, "quiz/classes_dashboard.html", context, status=400)
    messages.success(
        request,
        gettext("Assigned terms saved: %(count)d.") % {"count": len(assigned)},
    )
    return redirect("classes:dashboard", class_id=classroom.pk)


def _cell(value: str) -> str:
    """A spreadsheet reads a cell starting with = + - @ as a formula: keep it text."""
    return f"'{value}" if value.startswith(CSV_FORMULA_START) else value


@login_required
@require_GET
def export_csv(request, class_id):
    """The grid as CSV: a header row (learner, then term slugs), one row per learner."""
    classroom = _taught_or_404(request, class_id)
    grid = selectors.class_grid(classroom=classroom, lang=_lang())
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="class-{classroom.pk}-mastery.csv"'
    writer = csv.writer(response)
    writer.writerow(["learner", *(column["ref"].slug for column in grid["columns"])])
    for row in grid["rows"]:
        writer.writerow([_cell(row["name"]), *row["cells"]])
    return response


@login_required
@require_http_methods(["GET", "POST"])
def join(request, code):
    """GET: the class and a button to join it; POST: join."""
    classroom = selectors.classroom_by_code(code=code)
    if classroom is None:
        raise Http404(gettext("No class has this join code."))
    learner = selectors.current_learner(request=request)
    context = {
        "classroom": classroom,
        "is_teacher": classroom.teacher_id == request.user.pk,
        "is_member": selectors.is_member(classroom=classroom, learner=learner),
    }
    if request.method == "POST":
        learner = services.learner_for(request=request)
        try:
            services.join_classroom(classroom=classroom, learner=learner)
        except services.QuizError as refused:
            return render(
                request, "quiz/classes_join.html", {**context, "error": refused.message}, status=400
            )
        messages.success(
            request,
            gettext("You joined “%(name)s”. Terms your teacher assigns come first in your review.")
            % {"name": classroom.name},
        )
        return redirect("quiz:progress")
    return render(request, "quiz/classes_join.html", context)
