"""Delete finished live-model runs older than some days: their arrays are the bulk of the
database, and an identical sentence is simply computed again."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from engine.models import AttentionRun


class Command(BaseCommand):
    help = "Delete done and failed runs older than --days (default 30)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args, days: int, dry_run: bool, **options):
        old = AttentionRun.objects.filter(
            status__in=AttentionRun.FINAL, finished_at__lt=timezone.now() - timedelta(days=days)
        )
        count = old.count()
        if not dry_run:
            old.delete()
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb} {count} finished runs older than {days} days")
