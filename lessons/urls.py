from django.urls import path

from . import views

app_name = "lessons"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("terms/<slug:slug>/", views.term, name="term"),
]

api_urlpatterns = [
    path("terms/", views.api_terms, name="api-terms"),
    path("terms/<slug:slug>/", views.api_term, name="api-term"),
]
