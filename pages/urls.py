from django.urls import path

from . import views

# The glossary's pages keep the URL namespace "lessons" (lessons builds its links to terms with
# reverse("lessons:term")); their views live here because they combine lessons with the quiz.
app_name = "lessons"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("terms/<slug:slug>/", views.term, name="term"),
]

# Mounted under /api/v1/ by config.urls, in the namespace "lessons-api".
api_urlpatterns = [
    path("terms/", views.api_terms, name="api-terms"),
    path("terms/<slug:slug>/", views.api_term, name="api-term"),
]
