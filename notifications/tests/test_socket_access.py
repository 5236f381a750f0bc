"""Sockets that lose their access close: a removed member's, a revoked token's, the other
sessions' after a password change; everyone else's stay open and keep getting pushes."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from notifications import services
from portal import realtime, tenancy
from portal import services as portal_services
from portal.asgi import application
from portal.tests.factories import PASSWORD, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


def _signed_in(user, organization=None):
    client = Client()
    client.force_login(user)
    if organization is not None:
        session = client.session
        session[tenancy.SESSION_KEY] = organization.pk
        session.save()
    return client


def _browser_headers(client):
    return [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


def _token(membership, name="ws"):
    token, key = portal_services.api_token_create(membership=membership, name=name)
    return token, [(b"authorization", f"Token {key}".encode())]


def _org_push(organization, text):
    with transaction.atomic():
        push = services.push_create(
            organization=organization,
            type="ticket_update",
            data={"text": text},
            html=f"<div id='ticket-row-x'>{text}</div>",
        )
    services.push_send(push_ids=[push.pk])
    return push


async def _connect(headers):
    socket = WebsocketCommunicator(application, "/ws/", headers=headers)
    assert (await socket.connect(timeout=5))[0]
    return socket


async def _closed_with(socket, code):
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": code}


async def _gets(socket, text):
    frame = await socket.receive_from(timeout=5)
    assert text in frame


def test_removing_a_member_closes_their_sockets_in_that_organization_only(member, admin_member):
    removed = _browser_headers(_signed_in(member.user))
    _, removed_token = _token(member)
    elsewhere_org = OrganizationFactory(name="Elsewhere", slug="elsewhere")
    MembershipFactory(organization=elsewhere_org, user=member.user)
    elsewhere = _browser_headers(_signed_in(member.user, elsewhere_org))
    colleague = _browser_headers(_signed_in(admin_member.user))

    async def scenario():
        browser, api = await _connect(removed), await _connect(removed_token)
        other_org, staying = await _connect(elsewhere), await _connect(colleague)

        def remove():
            with transaction.atomic():
                portal_services.membership_remove(
                    organization=member.organization, actor_membership=admin_member, membership_id=member.pk
                )

        await database_sync_to_async(remove)()
        await _closed_with(browser, realtime.CLOSE_UNAUTHENTICATED)
        await _closed_with(api, realtime.CLOSE_UNAUTHENTICATED)
        await database_sync_to_async(_org_push)(member.organization, "secret after removal")
        await _gets(staying, "secret after removal")
        assert await browser.receive_nothing(timeout=0.5)
        assert await api.receive_nothing(timeout=0.1)
        # Their socket in the organization they still belong to is untouched.
        await database_sync_to_async(_org_push)(elsewhere_org, "still yours")
        await _gets(other_org, "still yours")
        for socket in (browser, api, other_org, staying):
            await socket.disconnect(timeout=5)

    async_to_sync(scenario)()


def test_revoking_a_token_closes_only_the_sockets_of_that_token(member):
    revoked, revoked_headers = _token(member, "old")
    _, kept_headers = _token(member, "new")
    browser_headers = _browser_headers(_signed_in(member.user))

    async def scenario():
        gone, kept, browser = (
            await _connect(revoked_headers),
            await _connect(kept_headers),
            await _connect(browser_headers),
        )

        def revoke():
            with transaction.atomic():
                portal_services.api_token_revoke(membership=member, public_id=revoked.public_id)

        await database_sync_to_async(revoke)()
        await _closed_with(gone, realtime.CLOSE_UNAUTHENTICATED)
        await database_sync_to_async(_org_push)(member.organization, "after revoke")
        assert (await kept.receive_json_from(timeout=5))["data"] == {"text": "after revoke"}
        await _gets(browser, "after revoke")
        assert await gone.receive_nothing(timeout=0.5)
        for socket in (gone, kept, browser):
            await socket.disconnect(timeout=5)

    async_to_sync(scenario)()


def test_changing_the_password_closes_only_the_other_sessions_sockets(member):
    this_client, other_client = _signed_in(member.user), _signed_in(member.user)
    this_headers, other_headers = _browser_headers(this_client), _browser_headers(other_client)
    _, token_headers = _token(member)

    async def scenario():
        this_tab, second_tab = await _connect(this_headers), await _connect(this_headers)
        other_session, api = await _connect(other_headers), await _connect(token_headers)

        def change_password():
            response = this_client.post(
                "/accounts/password/change/",
                {
                    "old_password": PASSWORD,
                    "new_password1": "brand-new-passw0rd!",
                    "new_password2": "brand-new-passw0rd!",
                },
            )
            assert response.status_code == 302
            # This browser is still signed in: its tabs' live updates must go on.
            assert this_client.get("/notifications/").status_code == 200

        await database_sync_to_async(change_password)()
        await _closed_with(other_session, realtime.CLOSE_SIGNED_OUT)
        await database_sync_to_async(_org_push)(member.organization, "after password change")
        for socket in (this_tab, second_tab):
            await _gets(socket, "after password change")
        assert (await api.receive_json_from(timeout=5))["data"] == {"text": "after password change"}
        assert await other_session.receive_nothing(timeout=0.3)
        for socket in (this_tab, second_tab, other_session, api):
            await socket.disconnect(timeout=5)

    async_to_sync(scenario)()
