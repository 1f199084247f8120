"""The Japanese of the interface follows the house style too: every translated string in the
catalogue (locale/ja) is checked against the term table of STYLE.ja.md, as the lessons are."""

from pathlib import Path

import polib
from django.conf import settings

from lessons.content import read_house_style

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "ja" / "LC_MESSAGES" / "django.po"


def _translations(entry: polib.POEntry) -> list[str]:
    return list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]


def test_every_japanese_interface_string_follows_the_term_table():
    style = read_house_style()
    catalogue = polib.pofile(str(CATALOGUE))
    assert len(catalogue.translated_entries()) > 100  # the whole catalogue, not an empty file
    problems = [
        f"{entry.msgid!r}: write 「{problem.use}」, not 「{problem.variant}」"
        for entry in catalogue
        if not entry.obsolete
        for text in _translations(entry)
        for problem in style.problems(text)
    ]
    assert problems == []


def test_the_check_would_catch_a_refused_variant():
    style = read_house_style()
    entry = polib.POEntry(msgid="Attention on your sentence", msgstr="あなたの文のアテンション")
    assert [p.variant for text in _translations(entry) for p in style.problems(text)] == [
        "アテンション"
    ]
