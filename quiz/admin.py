"""Question quality for authors: facility (share correct) and discrimination (correlation with
the rest of the attempt), flagged below 20 % or above 95 % facility once 20 answers are in."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import (
    Attempt,
    Classroom,
    Membership,
    Question,
    QuestionText,
    ReviewCard,
    TermProgress,
)
from .selectors import question_stats


class QuestionTextInline(admin.StackedInline):
    model = QuestionText
    extra = 0


class FlaggedFilter(admin.SimpleListFilter):
    title = _("quality")
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", _("flagged"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            flagged = [pk for pk, stats in question_stats().items() if stats["flagged"]]
            return queryset.filter(pk__in=flagged)
        return queryset


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "section", "answers", "facility", "discrimination", "flagged"]
    list_filter = [FlaggedFilter, "section", "term"]
    search_fields = ["key", "term__slug"]
    inlines = [QuestionTextInline]

    def changelist_view(self, request, extra_context=None):
        self._stats = question_stats()
        return super().changelist_view(request, extra_context)

    def _stat(self, obj, key):
        return getattr(self, "_stats", {}).get(obj.pk, {}).get(key)

    @admin.display(description=_("answers"))
    def answers(self, obj):
        return self._stat(obj, "answers") or 0

    @admin.display(description=_("facility"))
    def facility(self, obj):
        value = self._stat(obj, "facility")
        return "—" if value is None else f"{value:.0%}"

    @admin.display(description=_("discrimination"))
    def discrimination(self, obj):
        value = self._stat(obj, "discrimination")
        return "—" if value is None else f"{value:+.2f}"

    @admin.display(description=_("flagged"), boolean=True)
    def flagged(self, obj):
        return bool(self._stat(obj, "flagged"))


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "learner", "term", "score", "started_at", "finished_at"]
    list_filter = ["term"]


admin.site.register(TermProgress)
admin.site.register(ReviewCard)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["learner"]


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ["name", "teacher", "join_code", "created_at"]
    search_fields = ["name", "join_code", "teacher__username"]
    readonly_fields = ["join_code"]
    inlines = [MembershipInline]
