"""The glossary: terms, their text in each language, their relations and their sources.

The authored files in ``lessons/content/`` are the source of truth; ``manage.py load_content``
writes them here. Authors may fix a typo in the admin too: saving a text re-renders its HTML.
"""

from collections.abc import Iterable

from django.db import models
from django.utils.translation import gettext_lazy as _

from .rendering import render_markdown, term_links

TIERS = ("eli5", "beginner", "intermediate", "expert")
TIER_LABELS = {
    "eli5": _("Explain like I'm 5"),
    "beginner": _("Beginner"),
    "intermediate": _("Intermediate"),
    "expert": _("Expert deep dive"),
}
LANGS = ("ja", "en")


class Term(models.Model):
    slug = models.SlugField(unique=True)
    # Depth in the prerequisite graph (0 = no prerequisites), set by the loader; orders the map.
    layer = models.PositiveSmallIntegerField(default=0)
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, related_name="children", blank=True
    )
    related = models.ManyToManyField("self", symmetrical=False, related_name="+", blank=True)

    class Meta:
        ordering = ["layer", "slug"]

    def __str__(self):
        return self.slug


class TermText(models.Model):
    """A term in one language. Markdown fields are what authors write; ``*_html`` is rendered."""

    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="texts")
    lang = models.CharField(max_length=2, choices=[(code, code) for code in LANGS])
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=500)
    overview = models.TextField()
    eli5 = models.TextField()
    beginner = models.TextField()
    intermediate = models.TextField()
    expert = models.TextField()
    overview_html = models.TextField(editable=False, default="")
    eli5_html = models.TextField(editable=False, default="")
    beginner_html = models.TextField(editable=False, default="")
    intermediate_html = models.TextField(editable=False, default="")
    expert_html = models.TextField(editable=False, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["term", "lang"], name="one_text_per_lang")]
        ordering = ["term__layer", "term__slug", "lang"]

    def __str__(self):
        return f"{self.term.slug} ({self.lang})"

    def save(self, *args, render: bool = True, **kwargs):
        """Saving re-renders the HTML, unless the loader already rendered (and checked) it."""
        if render:
            fields = ("overview", *TIERS)
            titles = linked_titles([getattr(self, field) for field in fields], lang=self.lang)
            for field in fields:
                html = render_markdown(getattr(self, field), lang=self.lang, titles=titles)
                setattr(self, f"{field}_html", html)
        super().save(*args, **kwargs)

    def tier_html(self, tier: str) -> str:
        return getattr(self, f"{tier}_html")


def linked_titles(texts: Iterable[str], *, lang: str) -> dict[str, str]:
    """The titles in ``lang`` of the terms that ``texts`` link to with ``[[slug]]`` (one query;
    none when nothing is linked). A link to a term that does not exist is left out, so that
    rendering refuses it."""
    slugs = set().union(*(term_links(text) for text in texts))
    if not slugs:
        return {}
    rows = TermText.objects.filter(term__slug__in=slugs, lang=lang)
    return dict(rows.values_list("term__slug", "title"))


class Source(models.Model):
    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="sources")
    lang = models.CharField(max_length=2, choices=[(code, code) for code in LANGS])
    position = models.PositiveSmallIntegerField(default=0)
    authors = models.CharField(max_length=1000)
    title = models.CharField(max_length=500)
    year = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=500)

    class Meta:
        ordering = ["term", "lang", "position"]

    def __str__(self):
        return f"{self.authors} ({self.year}). {self.title}"


class ContentVersion(models.Model):
    """One row: a fresh random token every time the content changes (a load, an admin save or
    delete). Whatever depends only on the content is cached under it (see
    ``lessons.versioning``); a random token, not a counter, so that a database emptied and
    loaded again never meets the caches of an earlier content under the same number."""

    token = models.CharField(max_length=32)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"content {self.token} ({self.changed_at:%Y-%m-%d %H:%M:%S})"
