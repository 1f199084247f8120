"""The Celery application.

Workers run ``celery -A config worker -Q inference``. Settings come from Django's settings with the
``CELERY_`` prefix (see ``config/settings/base.py``).
"""

import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("attention_lab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def check_database_connections(**_kwargs) -> None:
    """Before each task, close the connections that are too old (CONN_MAX_AGE) or broken, as
    Django does at the start of each request; the others are kept, and health-checked on first
    use (CONN_HEALTH_CHECKS). See CELERY_DB_REUSE_MAX in the settings."""
    from django.db import close_old_connections

    close_old_connections()
