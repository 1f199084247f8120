from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path

from engine import views as engine_views
from lessons.urls import api_urlpatterns as lessons_api

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("robots.txt", views.robots, name="robots"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((lessons_api, "lessons-api"))),
    path("api/v1/attention", engine_views.api_submit, name="api-attention"),
    path("api/v1/attention/<str:run_id>/", engine_views.api_run, name="api-attention-run"),
]

urlpatterns += i18n_patterns(
    path("", include("lessons.urls")),
    path("", include("quiz.urls")),
    path("demo/", include("engine.urls")),
    path("accounts/", include("quiz.account_urls")),
    prefix_default_language=True,
)

handler400 = "config.views.bad_request"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
