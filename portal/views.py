"""Pages of the shared core: thin views that parse input, call one service and render."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal import selectors, services, tenancy
from portal.forms import AcceptInvitationForm, ApiTokenForm, InvitationForm, RoleForm, form_add_service_errors
from portal.health import health_check
from portal.tenancy import organization_admin_required, organization_required


class LogoutView(auth_views.LogoutView):
    """Sign out, and close this session's live sockets."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.session.session_key:
            services.sockets_close_after_commit(session_key=request.session.session_key)
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change the password, and close the live sockets of the user's other sessions.

    This session stays signed in (Django gives it a new key), so its sockets, opened under the
    old key, stay open; so do API-token sockets (a password change doesn't revoke tokens).
    """

    def form_valid(self, form: object) -> HttpResponse:
        old_key = self.request.session.session_key
        response = super().form_valid(form)
        services.sockets_close_after_commit(
            user=self.request.user, keep_session_keys=(old_key, self.request.session.session_key)
        )
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form: object) -> HttpResponse:
        services.sockets_close_after_commit(user=form.user)
        return super().form_valid(form)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico wherever a page names no icon (the Django admin, a JSON response)."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    ok, checks = health_check()
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


@login_required
def no_organization(request: HttpRequest) -> HttpResponse:
    if request.organization is not None:
        return redirect("dashboard")
    return render(request, "portal/no_organization.html")


@require_POST
@login_required
def organization_switch(request: HttpRequest) -> HttpResponse:
    wanted = request.POST.get("organization", "")
    membership = next((m for m in request.memberships if str(m.organization_id) == wanted), None)
    if membership is None:
        raise Http404("No such organization.")
    tenancy.activate_organization(request, membership)
    messages.success(request, f"Switched to {membership.organization.name}.")
    return redirect("dashboard")


# --- Members ----------------------------------------------------------------------------------


def _members_context(request: HttpRequest, invite_form: InvitationForm | None = None) -> dict:
    return {
        "members": selectors.membership_list(organization=request.organization),
        "invitations": selectors.invitation_list_open(organization=request.organization)
        if request.membership.is_admin
        else [],
        "invite_form": invite_form or InvitationForm(),
        "roles": RoleForm.base_fields["role"].choices,
    }


@organization_required
@require_GET
def members(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/members.html", _members_context(request))


@organization_admin_required
@require_POST
def member_invite(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                organization=request.organization, actor_membership=request.membership, **form.cleaned_data
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("members")
    return render(request, "portal/members.html", _members_context(request, form), status=400)


def _member_action(request: HttpRequest, action: Callable[[], object], success: str) -> HttpResponse:
    try:
        action()
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, success)
    return redirect("members")


@organization_admin_required
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    """GET: "Remove this member?", the page the members list links to. POST: remove them."""
    if request.method == "GET":
        membership = selectors.membership_list(organization=request.organization).filter(pk=membership_id).first()
        if membership is None:
            raise Http404("No such member.")
        return render(request, "portal/member_remove.html", {"membership": membership})
    return _member_action(
        request,
        lambda: services.membership_remove(
            organization=request.organization, actor_membership=request.membership, membership_id=membership_id
        ),
        "Member removed.",
    )


@organization_admin_required
@require_POST
def member_change_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("members")
    return _member_action(
        request,
        lambda: services.membership_change_role(
            organization=request.organization,
            actor_membership=request.membership,
            membership_id=membership_id,
            role=form.cleaned_data["role"],
        ),
        "Role updated.",
    )


@organization_admin_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    return _member_action(
        request,
        lambda: services.invitation_revoke(
            organization=request.organization, actor_membership=request.membership, invitation_id=invitation_id
        ),
        "Invitation revoked.",
    )


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.invitation_get_open(token=token)
    if invitation is None:
        return render(request, "portal/invitation_invalid.html", status=404)
    signed_in = request.user.is_authenticated
    form = AcceptInvitationForm(request.POST or None) if not signed_in else None
    error = None
    if request.method == "POST" and (signed_in or form.is_valid()):
        try:
            membership = services.invitation_accept(
                token=token,
                user=request.user if signed_in else None,
                **({} if signed_in else form.cleaned_data),
            )
        except ValidationError as exc:
            if form is not None and hasattr(exc, "error_dict"):
                form_add_service_errors(form, exc)
            else:
                error = " ".join(exc.messages)
        else:
            if not signed_in:
                login(request, membership.user, backend="portal.auth_backends.MembershipsModelBackend")
            tenancy.activate_organization(request, membership)
            messages.success(request, f"Welcome to {membership.organization.name}.")
            return redirect("dashboard")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "portal/invitation_accept.html",
        {
            "invitation": invitation,
            "form": form,
            "error": error,
            "login_url": f"{reverse('login')}?next={request.path}",
        },
        status=status,
    )


# --- API tokens -------------------------------------------------------------------------------


@organization_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_key = services.api_token_create(membership=request.membership, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            form = ApiTokenForm()
    status = 400 if request.method == "POST" and new_key is None else 200
    context = {"tokens": selectors.api_token_list(membership=request.membership), "form": form, "new_key": new_key}
    response = render(request, "portal/api_tokens.html", context, status=status)
    if new_key:
        # The key is in this page only: keep it out of every cache.
        response["Cache-Control"] = "no-store"
    return response


@organization_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    token = services.api_token_revoke(membership=request.membership, public_id=token_id)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("api_tokens")
