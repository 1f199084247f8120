"""Delete anonymous learners who have done nothing for QUIZ_ANONYMOUS_EXPIRY_DAYS (the periodic
sweep does the same every hour). Learners with an account are never expired."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from quiz import services


class Command(BaseCommand):
    help = (
        "Delete anonymous learners (with their attempts, progress and review cards) inactive for "
        "--days (default: QUIZ_ANONYMOUS_EXPIRY_DAYS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args, days: int | None, dry_run: bool, **options):
        days = settings.QUIZ_ANONYMOUS_EXPIRY_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 (keep forever) or more")
        if days == 0:
            self.stdout.write("expiry is off (0 days): nothing deleted")
            return
        count = services.expire_anonymous_learners(days=days, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb} {count} anonymous learners inactive for {days} days")
