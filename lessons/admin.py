"""Authors fix a typo here without a redeploy: saving a text re-renders its HTML (math and term
links included) and refuses text that would not render."""

from django import forms
from django.contrib import admin

from .models import TIERS, Source, Term, TermText, linked_titles
from .rendering import RenderError, render_markdown


class TermTextForm(forms.ModelForm):
    class Meta:
        model = TermText
        fields = ["term", "lang", "title", "summary", "overview", *TIERS]

    def clean(self):
        cleaned = super().clean()
        lang = cleaned.get("lang") or "en"
        fields = ("overview", *TIERS)
        titles = linked_titles([cleaned.get(field) or "" for field in fields], lang=lang)
        for field in fields:
            try:
                render_markdown(cleaned.get(field) or "", lang=lang, titles=titles)
            except RenderError as error:
                self.add_error(field, str(error))
        return cleaned


class TermTextInline(admin.StackedInline):
    model = TermText
    form = TermTextForm
    extra = 0


class SourceInline(admin.TabularInline):
    model = Source
    extra = 0


@admin.register(Term)
class TermAdmin(admin.ModelAdmin):
    list_display = ["slug", "layer"]
    search_fields = ["slug", "texts__title"]
    filter_horizontal = ["prerequisites", "related"]
    inlines = [TermTextInline, SourceInline]


@admin.register(TermText)
class TermTextAdmin(admin.ModelAdmin):
    form = TermTextForm
    list_display = ["term", "lang", "title"]
    list_filter = ["lang"]
    search_fields = ["title", "summary", "term__slug"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["term", "lang", "year", "title", "authors"]
    list_filter = ["lang", "year"]
    search_fields = ["title", "authors", "term__slug"]
