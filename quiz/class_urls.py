"""Classes, mounted at ``/<lang>/classes/`` by config.urls."""

from django.urls import path

from . import class_views

app_name = "classes"

urlpatterns = [
    path("", class_views.classes, name="list"),
    path("join/<str:code>/", class_views.join, name="join"),
    path("<str:class_id>/", class_views.dashboard, name="dashboard"),
    path("<str:class_id>/assign/", class_views.assign, name="assign"),
    path("<str:class_id>/export.csv", class_views.export_csv, name="export-csv"),
]
