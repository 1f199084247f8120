"""The Celery application.

Workers run ``celery -A config worker -Q inference``. Settings come from Django's settings with the
``CELERY_`` prefix (see ``config/settings/base.py``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("attention_lab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
