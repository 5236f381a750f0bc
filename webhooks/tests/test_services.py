"""Endpoint writes: validation (nothing saved on bad input), permissions, secrets and their encryption."""

import socket
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from webhooks import crypto, services, signing
from webhooks.models import Endpoint
from webhooks.tests.receiver import forbid_outside_connections

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch):
    forbid_outside_connections(monkeypatch)


def _create(admin_member, **fields):
    fields.setdefault("url", "http://127.0.0.1:9/hook")
    fields.setdefault("all_events", True)
    return services.endpoint_create(organization=admin_member.organization, actor_membership=admin_member, **fields)


def test_create_normalises_the_url_and_stores_a_sealed_standard_webhooks_secret(admin_member):
    endpoint = _create(admin_member, url="  http://127.0.0.1:8080/hooks/in?x=1  ", description=" CI ", all_events=False, event_types=["ticket.created", "invoice.created", "ticket.created"])
    assert endpoint.url == "http://127.0.0.1:8080/hooks/in?x=1"
    assert endpoint.description == "CI" and endpoint.event_types == ["invoice.created", "ticket.created"]
    secret = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    assert len(signing.secret_bytes(secret)) == 32 and endpoint.enabled


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "ftp://example.com/x"}, "url", "must start with https://"),
        ({"url": "not a url"}, "url", "spaces"),
        ({"url": "https://user:pw@example.com/"}, "url", "user name or password"),
        ({"url": "http://169.254.169.254/latest"}, "url", "cloud metadata service"),
        ({"url": "http://169.254.10.1/x"}, "url", "link-local address"),
        ({"url": "http://10.0.0.5/hook"}, "url", "private network"),
        ({"url": "http://metadata.google.internal/"}, "url", "internal host name"),
        ({"url": "http://2130706433/"}, "url", "unusual notation"),
        ({"url": "http://[::ffff:10.0.0.1]/"}, "url", "IPv4-mapped"),
        ({"url": "https://x" * 1100}, "url", "longer than"),
        ({"event_types": ["ticket.exploded"], "all_events": False}, "event_types", "Unknown event type: ticket.exploded"),
        ({"event_types": ["notification.created"], "all_events": False}, "event_types", "Not available to webhooks"),
        ({"event_types": [], "all_events": False}, "event_types", "Choose at least one event type"),
        ({"description": "x" * 501}, "description", "500 characters (it has 501)"),
    ],
)
def test_bad_input_is_a_clear_field_error_and_nothing_is_saved(admin_member, fields, field, message):
    with pytest.raises(ValidationError) as caught:
        _create(admin_member, **fields)
    assert message in " ".join(caught.value.message_dict[field])
    assert not Endpoint.objects.exists()


def test_all_problems_are_reported_at_once(admin_member):
    with pytest.raises(ValidationError) as caught:
        _create(admin_member, url="ftp://x", description="x" * 600, event_types=["nope"], all_events=False)
    assert set(caught.value.message_dict) == {"url", "description", "event_types"}


def test_plain_http_and_loopback_need_the_development_settings(admin_member, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(ValidationError, match="must use https://"):
        _create(admin_member, url="http://127.0.0.1/hook")
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    with pytest.raises(ValidationError, match="loopback"):
        _create(admin_member, url="https://127.0.0.1/hook")
    with pytest.raises(ValidationError, match="this machine"):
        _create(admin_member, url="https://localhost/hook")


def test_a_name_resolving_to_a_private_address_is_refused_on_save(admin_member, monkeypatch):
    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ValidationError, match=r"hooks.example.com \(10.1.2.3\) is a private network address"):
        _create(admin_member, url="https://hooks.example.com/in")
    assert not Endpoint.objects.exists()


def test_an_unresolvable_name_is_refused_with_a_message(admin_member, monkeypatch):
    def resolve(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ValidationError, match=r"Could not resolve nowhere\.example\.com"):
        _create(admin_member, url="https://nowhere.example.com/in")


def test_members_cannot_manage_endpoints(member, admin_member):
    with pytest.raises(PermissionDenied):
        _create(member)
    endpoint = _create(admin_member)
    for call, kwargs in [
        (services.endpoint_update, {"description": "x"}),
        (services.endpoint_delete, {}),
        (services.endpoint_secret_reveal, {}),
        (services.endpoint_secret_rotate, {}),
        (services.endpoint_disable, {}),
        (services.endpoint_enable, {}),
        (services.endpoint_test_send, {}),
        (services.endpoint_recover, {"since": timezone.now()}),
        (services.delivery_replay, {"msg_id": "msg_x"}),
    ]:
        with pytest.raises(PermissionDenied):
            call(endpoint=endpoint, actor_membership=member, **kwargs)


def test_an_admin_of_another_organization_cannot_act_here(admin_member, other_member):
    endpoint = _create(admin_member)
    with pytest.raises(PermissionDenied):
        services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=other_member)


def test_update_changes_only_what_is_given_and_validates_it(admin_member):
    endpoint = _create(admin_member, description="old")
    services.endpoint_update(endpoint=endpoint, actor_membership=admin_member, all_events=False, event_types=["invoice.created"])
    endpoint.refresh_from_db()
    assert (endpoint.all_events, endpoint.event_types, endpoint.description) == (False, ["invoice.created"], "old")
    with pytest.raises(ValidationError, match="private network"):
        services.endpoint_update(endpoint=endpoint, actor_membership=admin_member, url="http://192.168.1.1/")
    endpoint.refresh_from_db()
    assert endpoint.url == "http://127.0.0.1:9/hook"


def test_the_endpoint_limit_per_organization(admin_member, settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_ORGANIZATION = 2
    _create(admin_member)
    _create(admin_member)
    with pytest.raises(ValidationError, match="at most 2 webhook endpoints"):
        _create(admin_member)


def test_rotation_keeps_the_old_secret_signing_for_24_hours(admin_member, clock):
    endpoint = _create(admin_member)
    old = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    new = services.endpoint_secret_rotate(endpoint=endpoint, actor_membership=admin_member)
    endpoint.refresh_from_db()
    assert services.endpoint_secrets_active(endpoint=endpoint) == [new, old]
    assert endpoint.previous_secret_expires_at == clock() + timedelta(hours=24)
    clock.advance(hours=24)
    assert services.endpoint_secrets_active(endpoint=endpoint) == [new]


def test_disable_with_a_reason_and_enable_again(admin_member):
    endpoint = _create(admin_member)
    services.endpoint_disable(endpoint=endpoint, actor_membership=admin_member, reason="Maintenance")
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "Maintenance" and endpoint.disabled_at
    assert services.endpoint_enable(endpoint=endpoint, actor_membership=admin_member) is None
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == "" and endpoint.disabled_at is None


def test_a_test_event_needs_an_enabled_endpoint(admin_member):
    endpoint = _create(admin_member)
    services.endpoint_disable(endpoint=endpoint, actor_membership=admin_member)
    with pytest.raises(ValidationError, match="Enable the endpoint"):
        services.endpoint_test_send(endpoint=endpoint, actor_membership=admin_member)


# --- Encryption at rest ----------------------------------------------------------------------------


def test_a_sealed_secret_opens_only_for_its_own_endpoint():
    sealed = crypto.secret_encrypt("whsec_abc", context="webhooks.endpoint:1")
    assert crypto.secret_decrypt(sealed, context="webhooks.endpoint:1") == "whsec_abc"
    with pytest.raises(crypto.SecretDecryptError):
        crypto.secret_decrypt(sealed, context="webhooks.endpoint:2")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(crypto.SecretDecryptError):
        crypto.secret_decrypt(tampered, context="webhooks.endpoint:1")
    with pytest.raises(crypto.SecretDecryptError):
        crypto.secret_decrypt("whsec_plaintext", context="webhooks.endpoint:1")


def test_the_default_key_comes_from_secret_key_and_its_fallbacks(settings):
    settings.WEBHOOK_SECRET_KEY = ""
    settings.SECRET_KEY = "old-django-key-" + "x" * 40
    sealed = crypto.secret_encrypt("whsec_abc", context="c")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-django-key-" + "y" * 40, ["old-django-key-" + "x" * 40]
    assert crypto.secret_decrypt(sealed, context="c") == "whsec_abc"
    assert crypto.secret_needs_reencrypt(sealed)


def test_key_rotation_reencrypts_every_secret_then_the_old_key_can_go(admin_member, settings):
    settings.WEBHOOK_SECRET_KEY = "first-key-" + "a" * 40
    endpoint = _create(admin_member)
    services.endpoint_secret_rotate(endpoint=endpoint, actor_membership=admin_member)
    secrets_before = services.endpoint_secrets_active(endpoint=Endpoint.objects.get())

    settings.WEBHOOK_SECRET_KEY = "second-key-" + "b" * 40 + ",first-key-" + "a" * 40
    assert services.endpoint_secrets_reencrypt() == 1
    assert services.endpoint_secrets_reencrypt() == 0

    settings.WEBHOOK_SECRET_KEY = "second-key-" + "b" * 40
    assert services.endpoint_secrets_active(endpoint=Endpoint.objects.get()) == secrets_before
