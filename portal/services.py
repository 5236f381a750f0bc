"""Writes of the shared core: organizations, members, invitations, credentials, platform events."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from portal import events, joins
from portal.models import ApiToken, Event, Invitation, Membership, Organization, ServiceToken
from portal.tenancy import scoped_get_or_404

User = get_user_model()

API_TOKEN_PREFIX = "sbp"  # noqa: S105 - a key prefix, not a secret
SERVICE_TOKEN_PREFIX = "sbs"  # noqa: S105


# --- Secrets --------------------------------------------------------------------------------


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once, never stored
    prefix: str
    key_hash: str


def _new_key(kind: str) -> NewKey:
    prefix = secrets.token_hex(6)
    key = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, key_hash=_hash(key))


def _split_key(kind: str, key: str) -> str | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != kind or len(parts[1]) != 12:
        return None
    return parts[1]


def _key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(_hash(key), key_hash)


# --- Organizations and members --------------------------------------------------------------


@transaction.atomic
def organization_create(*, name: str, owner: Any, slug: str = "") -> Organization:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Enter the organization's name."})
    organization = Organization(name=name, slug=slug or slugify(name)[:60])
    organization.full_clean()
    organization.save()
    Membership.objects.create(organization=organization, user=owner, role=Membership.Role.ADMIN)
    return organization


def _admin_count(organization: Organization) -> int:
    return Membership.objects.for_organization(organization).filter(role=Membership.Role.ADMIN).count()


@transaction.atomic
def membership_remove(*, organization: Organization, actor_membership: Membership, membership_id: int) -> None:
    _require_admin(actor_membership)
    # Lock the organization's admins so two admins cannot remove each other at once.
    list(Membership.objects.for_organization(organization).filter(role=Membership.Role.ADMIN).select_for_update())
    membership = scoped_get_or_404(
        Membership.objects.for_organization(organization), organization=organization, pk=membership_id
    )
    if membership.is_admin and _admin_count(organization) <= 1:
        raise ValidationError("An organization needs at least one admin: make someone else admin first.")
    membership.delete()
    # Their open sockets (browser and API tokens, deleted with the membership) would keep getting
    # the organization's pushes until they close.
    _access_revoked_sockets_close(user_id=membership.user_id, organization=organization)


@transaction.atomic
def membership_change_role(
    *, organization: Organization, actor_membership: Membership, membership_id: int, role: str
) -> Membership:
    _require_admin(actor_membership)
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Membership.Role.values)}."})
    list(Membership.objects.for_organization(organization).filter(role=Membership.Role.ADMIN).select_for_update())
    membership = scoped_get_or_404(
        Membership.objects.for_organization(organization), organization=organization, pk=membership_id
    )
    if membership.is_admin and role != Membership.Role.ADMIN and _admin_count(organization) <= 1:
        raise ValidationError({"role": "An organization needs at least one admin."})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def _require_admin(membership: Membership) -> None:
    if not membership.is_admin:
        raise ValidationError("Only organization admins can manage members.")


# --- Invitations ----------------------------------------------------------------------------


@transaction.atomic
def invitation_create(*, organization: Organization, actor_membership: Membership, email: str, role: str) -> Invitation:
    """Invite ``email``; a repeated invitation to the same address replaces the open one."""
    _require_admin(actor_membership)
    email = User.objects.normalize_email(email.strip()).lower()
    if not email:
        raise ValidationError({"email": "Enter an email address."})
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Membership.Role.values)}."})
    if Membership.objects.for_organization(organization).filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member of {organization.name}."})
    Invitation.objects.for_organization(organization).filter(email__iexact=email, accepted_at__isnull=True).delete()
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=_hash(token),
        invited_by=actor_membership.user,
        expires_at=timezone.now() + settings.INVITATION_TTL,
    )
    link = f"{settings.PORTAL_BASE_URL}{reverse('invitation_accept', args=[token])}"
    context = {
        "organization": organization,
        "invited_by": actor_membership.user,
        "link": link,
        "invitation": invitation,
    }
    body = render_to_string("emails/invitation.txt", context)
    transaction.on_commit(
        lambda: send_mail(f"You're invited to {organization.name} on SecureBase Portal", body, None, [email])
    )
    return invitation


def invitation_get_open(*, token: str) -> Invitation | None:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=_hash(token), accepted_at__isnull=True)
        .first()
    )
    if invitation is None or invitation.expires_at <= timezone.now():
        return None
    return invitation


@transaction.atomic
def invitation_revoke(*, organization: Organization, actor_membership: Membership, invitation_id: int) -> None:
    _require_admin(actor_membership)
    scoped_get_or_404(
        Invitation.objects.for_organization(organization).filter(accepted_at__isnull=True),
        organization=organization,
        pk=invitation_id,
    ).delete()


@transaction.atomic
def invitation_accept(*, token: str, user: Any = None, name: str = "", password: str = "") -> Membership:
    """Accept as the signed-in ``user`` (whose email must match) or create the account."""
    invitation = invitation_get_open(token=token)
    if invitation is None:
        raise ValidationError("This invitation is invalid, already used or expired. Ask an admin for a new one.")
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ValidationError("This invitation was already used.")
    if user is not None and user.is_authenticated:
        if user.email.lower() != invitation.email.lower():
            raise ValidationError(f"This invitation is for {invitation.email}; sign in as that user to accept it.")
    else:
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise ValidationError(f"An account for {invitation.email} exists already: sign in to accept.")
        user = User(username=invitation.email, email=invitation.email, first_name=name.strip()[:150])
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
        user.set_password(password)
        user.save()
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                organization=invitation.organization, user=user, role=invitation.role
            )
    except IntegrityError:
        raise ValidationError(f"You are already a member of {invitation.organization.name}.") from None
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    events.publish(
        events.MEMBER_JOINED,
        organization=invitation.organization,
        actor=user,
        data={"member": str(user.pk), "role": membership.role},
    )
    return membership


# --- API tokens -----------------------------------------------------------------------------


@transaction.atomic
def api_token_create(*, membership: Membership, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``membership``; the returned key is shown once and never stored."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, such as the system that will use it."})
    if len(name) > 100:
        raise ValidationError({"name": "Keep the name to 100 characters or fewer."})
    new = _new_key(API_TOKEN_PREFIX)
    token = ApiToken.objects.create(
        organization_id=membership.organization_id,
        membership=membership,
        name=name,
        prefix=new.prefix,
        key_hash=new.key_hash,
    )
    return token, new.key


@transaction.atomic
def api_token_revoke(*, membership: Membership, public_id: Any) -> ApiToken:
    token = scoped_get_or_404(
        ApiToken.objects.for_organization(membership.organization).filter(
            membership=membership, revoked_at__isnull=True
        ),
        organization=membership.organization,
        public_id=public_id,
    )
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    _access_revoked_sockets_close(user_id=membership.user_id, organization=membership.organization, token=token)
    return token


LAST_USED_PRECISION = 60  # seconds: don't write a row on every request


@functools.lru_cache(maxsize=4)
def _token_lookup(db: str) -> joins.Join:
    """The token with its membership, user and organization, for a key's prefix: one join."""
    return joins.build(
        db,
        ("t", ApiToken),
        [
            ("m", Membership, "t", "membership"),
            ("u", get_user_model(), "m", "user"),
            ("o", Organization, "m", "organization"),
        ],
        where=[("t", "prefix", "= %s"), ("t", "revoked_at", "IS NULL")],
    )


def api_token_authenticate(*, key: str, touch: bool = True) -> ApiToken | None:
    """The live token for ``key`` (with its membership, user and organization), or None.

    Records ``last_used_at`` at most once a minute per token; with ``touch=False`` the caller
    records it instead (WebSocket handshakes batch those writes per process, ADR 0018).

    Every API request and token socket handshake runs this, so the four rows come from one
    hand-written join, loaded with ``Model.from_db`` exactly as ``select_related`` would load
    them: compiling that select_related through the ORM cost ~1.8 ms of CPU per call, the
    query as written here ~0.3 ms (ADR 0018).
    """
    from django.db import router

    prefix = _split_key(API_TOKEN_PREFIX, key)
    if prefix is None:
        return None
    db = router.db_for_read(ApiToken)
    found = _token_lookup(db).rows(db, [prefix])
    if not found:
        return None
    token = found[0][0]
    if not _key_matches(key, token.key_hash) or not token.membership.user.is_active:
        return None
    if touch and api_token_use_unrecorded(token):
        api_tokens_mark_used(token_ids=[token.pk])
    return token


def api_token_use_unrecorded(token: ApiToken) -> bool:
    """Whether a use of ``token`` now needs recording: ``last_used_at`` is kept to the minute."""
    last = token.last_used_at
    return last is None or (timezone.now() - last).total_seconds() > LAST_USED_PRECISION


def api_tokens_mark_used(*, token_ids: list[int]) -> None:
    """Stamp ``last_used_at`` on these tokens (one UPDATE, its own statement's transaction)."""
    ApiToken.objects.filter(pk__in=token_ids).update(last_used_at=timezone.now())


@transaction.atomic
def service_token_create(*, name: str) -> tuple[ServiceToken, str]:
    new = _new_key(SERVICE_TOKEN_PREFIX)
    token = ServiceToken.objects.create(name=name.strip()[:100], prefix=new.prefix, key_hash=new.key_hash)
    return token, new.key


def service_token_authenticate(*, key: str) -> ServiceToken | None:
    prefix = _split_key(SERVICE_TOKEN_PREFIX, key)
    if prefix is None:
        return None
    token = ServiceToken.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if token is None or not _key_matches(key, token.key_hash):
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_PRECISION:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


# --- Live sockets -------------------------------------------------------------------------------


def sockets_close_after_commit(
    *, session_key: str | None = None, user: Any = None, keep_session_keys: tuple[str | None, ...] = ()
) -> None:
    """Close the live sockets of one session (sign-out) or of every session of a user.

    With ``keep_session_keys`` (a password change), only the user's *other* sessions' browser
    sockets close: the sessions kept are still signed in, and API tokens stay valid.
    Sent from a worker after commit: the request never talks to the channel layer itself.
    """
    from portal import realtime

    groups: list[str | dict[str, Any]] = []
    if session_key:
        groups.append(realtime.session_group(session_key))
    if user is not None:
        keep = [realtime.session_group(key) for key in keep_session_keys if key]
        groups.append(
            realtime.close_request(
                realtime.user_group(user.pk), code=realtime.CLOSE_SIGNED_OUT, keep_sessions=keep, browsers_only=True
            )
            if keep
            else realtime.user_group(user.pk)
        )
    _sockets_close_after_commit(groups)


def _sockets_close_after_commit(groups: list[str | dict[str, Any]]) -> None:
    from portal.tasks import sockets_close_task

    if groups:
        transaction.on_commit(lambda: _enqueue_quietly(sockets_close_task, groups))


def _access_revoked_sockets_close(*, user_id: int, organization: Organization, token: ApiToken | None = None) -> None:
    """After commit, close the sockets that lost their access: a removed member's sockets in that
    organization, or those of one revoked token. 4401: retrying with those credentials can't work."""
    from portal import realtime

    request = realtime.close_request(
        realtime.user_group(user_id),
        code=realtime.CLOSE_UNAUTHENTICATED,
        organization=organization.pk,
        token=token.pk if token is not None else None,
    )
    _sockets_close_after_commit([request])


def _enqueue_quietly(task: Any, *args: Any) -> None:
    try:
        task.delay(*args)
    except Exception:
        import logging

        logging.getLogger(__name__).warning("could not enqueue %s", task.name, exc_info=True)


# --- E-mail preferences ------------------------------------------------------------------------

# Producers (tickets) send their own e-mails but must honour the recipients' notification
# preferences, which belong to an app above them (notifications): that app registers the rule
# here, as subscribers register with portal.events, and producers ask through the core.
_email_recipients_rule: Callable[..., set[int]] | None = None


def email_recipients_rule_register(rule: Callable[..., set[int]]) -> None:
    """``rule(user_ids=..., kind=...)``: who of ``user_ids`` is to get an e-mail of ``kind``."""
    global _email_recipients_rule
    _email_recipients_rule = rule


def email_recipients(*, user_ids: Iterable[int], kind: str) -> set[int]:
    """Who of ``user_ids`` is to get a producer's e-mail of notification type ``kind``."""
    ids = set(user_ids)
    if _email_recipients_rule is None or not ids:
        return ids
    return _email_recipients_rule(user_ids=ids, kind=kind)


# --- Platform event intake ------------------------------------------------------------------


@transaction.atomic
def platform_event_ingest(*, service_token: ServiceToken, event_type: str, organization_slug: str, data: Any) -> Event:
    """Validate an externally-originated event against the catalog and publish it."""
    errors: dict[str, Any] = {}
    event_definition = events.CATALOG.get(event_type)
    if event_definition is None:
        errors["type"] = [f"Unknown event type {event_type!r}."]
    elif not event_definition.external:
        allowed = sorted(n for n, t in events.CATALOG.items() if t.external)
        errors["type"] = [f"{event_type!r} cannot be sent from outside the portal; allowed: {', '.join(allowed)}."]
    organization = Organization.objects.filter(slug=organization_slug).first()
    if organization is None:
        errors["organization"] = [f"No organization {organization_slug!r}."]
    if not isinstance(data, dict):
        errors["data"] = ["Must be a JSON object."]
    elif event_definition is not None and not errors.get("type"):
        errors.update(events.event_payload_errors(event_type, data))
    if errors:
        raise ValidationError(errors)
    return events.publish(event_type, organization=organization, data=data, source=service_token.name)
