from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path

from pages import views as pages_views
from pages.api import api

urlpatterns = [
    path("healthz", pages_views.healthz, name="healthz"),
    path("robots.txt", pages_views.robots, name="robots"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),  # the term API and the live model's (pages.api), with OpenAPI
]

urlpatterns += i18n_patterns(
    path("", include("pages.urls")),
    path("", include("quiz.urls")),
    path("demo/", include("engine.urls")),
    path("classes/", include("quiz.class_urls")),
    path("accounts/", include("quiz.account_urls")),
    prefix_default_language=True,
)

handler400 = "pages.views.bad_request"
handler404 = "pages.views.not_found"
handler500 = "pages.views.server_error"
