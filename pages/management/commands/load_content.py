from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lessons.content import CONTENT_DIR, STYLE_PATH, ContentError, read_glossary
from pages.services import check_observe_models, load_content


class Command(BaseCommand):
    help = "Check the authored glossary in lessons/content/ and load it, with its quiz questions."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=CONTENT_DIR, help="content folder")
        parser.add_argument("--check", action="store_true", help="only check; write nothing")
        parser.add_argument(
            "--style", type=Path, default=STYLE_PATH, help="Japanese house style (its term table)"
        )

    def handle(self, *args, dir: Path, check: bool, style: Path, **options):
        try:
            glossary = read_glossary(dir, style_path=style)
            check_observe_models(glossary)
        except ContentError as error:
            raise CommandError(f"content refused, nothing was changed:\n  {error}") from None
        for warning in glossary.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        languages = sum(len(by_lang) for by_lang in glossary.terms.values())
        if check:
            self.stdout.write(f"content ok: {len(glossary.terms)} terms, {languages} files")
            return
        content = load_content(glossary=glossary)
        report = content.lessons
        self.stdout.write(
            self.style.SUCCESS(
                f"loaded {len(glossary.terms)} terms ({report.created} new, "
                f"{report.updated} updated, {len(report.removed)} removed), "
                f"{languages} files, {content.questions} quiz questions"
            )
        )
        if report.removed:
            self.stdout.write(f"removed terms no longer authored: {', '.join(report.removed)}")
