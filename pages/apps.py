from django.apps import AppConfig


class PagesConfig(AppConfig):
    """The composition layer: pages that combine the apps (see pages/__init__.py)."""

    name = "pages"
    verbose_name = "Pages"
