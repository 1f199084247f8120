from django.urls import path

from . import views

app_name = "engine"

urlpatterns = [
    path("", views.demo, name="demo"),
    path("runs/<str:run_id>/", views.run_page, name="run"),
    path("runs/<str:run_id>/status/", views.run_status, name="run-status"),
    path("runs/<str:run_id>/faithfulness/", views.faithfulness, name="faithfulness"),
    path("runs/<str:run_id>/export.svg", views.export, {"fmt": "svg"}, name="export-svg"),
    path("runs/<str:run_id>/export.csv", views.export, {"fmt": "csv"}, name="export-csv"),
]

# The JSON API (engine.api) is a django-ninja router that pages.api mounts under /api/v1/.
