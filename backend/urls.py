from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import views as accounts
from backend import views
from conventions import pages

api_patterns = [
    path("health/", views.HealthView.as_view(), name="health"),
    path("auth/register/", accounts.RegisterView.as_view(), name="register"),
    path("auth/token/", accounts.TokenView.as_view(), name="token"),
    path("auth/sessions/", accounts.SessionListView.as_view(), name="sessions"),
    path("auth/sessions/<int:pk>/", accounts.SessionDetailView.as_view(), name="session-detail"),
    path("auth/password/", accounts.PasswordChangeView.as_view(), name="password"),
    path("me/", accounts.MeView.as_view(), name="me"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("payments.urls")),
    path("", include("notifications.urls")),
]

urlpatterns = [
    path("favicon.ico", pages.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
]

handler400 = "conventions.errors.handler400"
handler403 = "conventions.errors.handler403"
handler404 = "conventions.errors.handler404"
handler500 = "conventions.errors.handler500"
