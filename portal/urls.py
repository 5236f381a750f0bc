from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import api, dashboard, views

api_v1 = [
    path("me/", api.MeApi.as_view(), name="me"),
    path("members/", api.MemberListApi.as_view(), name="members"),
    path("tokens/", api.ApiTokenListCreateApi.as_view(), name="tokens"),
    path("tokens/<uuid:token_id>/", api.ApiTokenRevokeApi.as_view(), name="token"),
    path("events/", api.EventsApi.as_view(), name="events"),
]

auth_urls = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password/reset/complete/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("accounts/", include(auth_urls)),
    path("organization/switch/", views.organization_switch, name="organization_switch"),
    path("organization/none/", views.no_organization, name="no_organization"),
    path("organization/members/", views.members, name="members"),
    path("organization/members/invite/", views.member_invite, name="member_invite"),
    path("organization/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("organization/members/<int:membership_id>/role/", views.member_change_role, name="member_change_role"),
    path("organization/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/<uuid:token_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("tickets/", include("tickets.urls")),
    path("notifications/", include("notifications.urls")),
    path("costs/", include("forecasting.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/v1/", include("tickets.api_urls")),
    path("api/v1/", include("notifications.api_urls")),
    path("api/v1/", include("forecasting.api_urls")),
    path("api/v1/", include("webhooks.api_urls")),
    path("graphql/", include("graphql_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets a few inline styles; only this page allows them.
    path(
        "api/docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
]

# JSON for paths under /api/, the usual pages elsewhere (portal/exceptions.py).
handler400 = "portal.exceptions.bad_request"
handler404 = "portal.exceptions.not_found"
handler500 = "portal.exceptions.server_error"
