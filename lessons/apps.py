from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


class LessonsConfig(AppConfig):
    name = "lessons"
    verbose_name = "Lessons"

    def ready(self):
        """Every save or delete of the content gives it a new version (see lessons.versioning):
        the admin's, the shell's and the tests' writes alike."""
        from . import versioning
        from .models import Source, Term, TermText

        for model in (Term, TermText, Source):
            post_save.connect(versioning.content_changed, sender=model, dispatch_uid=f"cv-{model}")
            post_delete.connect(
                versioning.content_changed, sender=model, dispatch_uid=f"cv-del-{model}"
            )
        for through in (Term.prerequisites.through, Term.related.through):
            m2m_changed.connect(
                versioning.content_changed, sender=through, dispatch_uid=f"cv-m2m-{through}"
            )
