from django.apps import AppConfig


class QuizConfig(AppConfig):
    name = "quiz"
    verbose_name = "Quiz"

    def ready(self):
        from . import signals  # noqa: F401  (merges a session's progress on log-in)
