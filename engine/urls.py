from django.urls import path

from . import api, views

app_name = "engine"

urlpatterns = [
    path("", views.demo, name="demo"),
    path("runs/<str:run_id>/", views.run_page, name="run"),
    path("runs/<str:run_id>/status/", views.run_status, name="run-status"),
    path("runs/<str:run_id>/thumb/<int:layer>/<int:head>.svg", views.thumbnail, name="thumbnail"),
]

# Mounted under /api/v1/ by config.urls (no language prefix; names are not namespaced).
api_urlpatterns = [
    path("models", api.api_models, name="api-models"),
    path("attention", api.api_submit, name="api-attention"),
    path("attention/<str:run_id>/", api.api_run, name="api-attention-run"),
]
