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

# The term API is in pages.api, with the live model's, under /api/v1/.
