from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

from timebank.api import endpoints  # noqa: F401 (registers the endpoints)
from timebank.api.main import api

admin.site.site_header = "TimeBank"
admin.site.site_title = "TimeBank"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/v1/", api.urls),
    path("", include("timebank.web.urls")),
]

handler400 = "timebank.web.views.errors.bad_request"
handler403 = "timebank.web.views.errors.forbidden"
handler404 = "timebank.web.views.errors.not_found"
handler500 = "timebank.web.views.errors.server_error"
