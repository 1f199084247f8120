"""Thin Celery tasks of the quiz: call a service. Run by the periodic sweep (CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from . import services


@shared_task(name="quiz.tasks.expire_anonymous_learners")
def expire_anonymous_learners() -> int:
    """Delete anonymous learners inactive for QUIZ_ANONYMOUS_EXPIRY_DAYS; returns how many."""
    return services.expire_anonymous_learners()
