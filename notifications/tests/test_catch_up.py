"""Catching up after a long gap (more missed than one answer carries) ends with the current state."""

import re

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from notifications import services
from portal import services as portal_services
from portal.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")
STALE_BADGE = '<span id="notification-badge" hx-swap-oob="innerHTML">7</span>'


def _long_gap(member):
    """A cursor, then more pushes than a resume carries; the newest is an (old) badge of 7 while
    the inbox really holds one unread notification, "Disk almost full"."""
    org, uid = member.organization, member.user_id
    with transaction.atomic():
        first = services.push_create(organization=org, user_id=uid, type="notification", data={}, html="<i>0</i>")
        services.pushes_create(
            organization=org,
            pushes=[
                {"type": "metrics_update", "data": {}, "html": f"<b id='m{i}'>m{i}</b>", "user_id": None}
                for i in range(services.RESUME_LIMIT)
            ],
        )
        services.notify(organization=org, recipient_ids=[uid], kind="info", title="Disk almost full")
        last = services.push_create(
            organization=org, user_id=uid, type="notification", data={"unread": 7}, html=STALE_BADGE
        )
    return first, last


def _badges(text):
    return re.findall(r'<span class="bell-badge[^"]*">(\d*)', text)


def test_polling_after_a_long_gap_sends_the_newest_pushes_then_the_current_inbox(member_client, member):
    first, last = _long_gap(member)
    response = member_client.get(f"/notifications/poll/?last_id={first.pk}")
    assert response.status_code == 200
    body = response.content.decode()
    # The cursor moves only past what was sent: the newest pushes, up to the latest one.
    assert f'data-live-id="{last.pk}"' in body
    assert STALE_BADGE in body and "<b id='m499'>" in body
    assert "<b id='m0'>" not in body  # the oldest ones are superseded, not what is left on the page
    # ...and then the inbox as it is now: one unread, "Disk almost full" in the dropdown.
    state = body[body.index(STALE_BADGE) + len(STALE_BADGE) :]
    assert _badges(state) == ["1"] and "Disk almost full" in state
    assert f'data-push-id="{last.pk}"' in state
    assert member_client.get(f"/notifications/poll/?last_id={last.pk}").status_code == 304


def test_polling_a_short_gap_sends_every_missed_push_and_no_extra_state(member_client, member):
    org, uid = member.organization, member.user_id
    with transaction.atomic():
        first = services.push_create(organization=org, user_id=uid, type="notification", data={}, html="<i>0</i>")
        last = services.push_create(organization=org, user_id=None, type="metrics_update", data={}, html="<b>m</b>")
    body = member_client.get(f"/notifications/poll/?last_id={first.pk}").content.decode()
    assert body == f'<span id="live-cursor" hidden data-live-id="{last.pk}" hx-swap-oob="true"></span><b>m</b>'


async def _frames(communicator):
    frames = []
    while not await communicator.receive_nothing(timeout=1):
        frames.append(await communicator.receive_from(timeout=1))
    return frames


def _resumed(first, headers):
    """Every frame a socket resuming after ``first`` gets before it goes quiet."""

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/?last_id={first.pk}", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        frames = await _frames(communicator)
        await communicator.disconnect(timeout=5)
        return frames

    return async_to_sync(scenario)()


def test_a_browser_resuming_after_a_long_gap_gets_the_newest_pushes_then_the_current_inbox(member):
    first, last = _long_gap(member)
    client = Client()
    client.force_login(member.user)
    headers = [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]

    frames = _resumed(first, headers)
    assert len(frames) == services.RESUME_LIMIT + 1
    assert f'data-live-id="{last.pk}"' in frames[-2] and STALE_BADGE in frames[-2]
    assert not any('"resync"' in f for f in frames)
    state = frames[-1]
    assert _badges(state) == ["1"] and "Disk almost full" in state
    assert 'id="notification-dropdown-list"' in state and f'data-push-id="{last.pk}"' in state


def test_an_api_client_resuming_after_a_long_gap_gets_the_oldest_pushes_then_resync(member):
    first, _ = _long_gap(member)
    _, key = portal_services.api_token_create(membership=member, name="ws")

    frames = _resumed(first, [(b"authorization", f"Token {key}".encode())])
    assert len(frames) == services.RESUME_LIMIT + 1
    assert f'"id": {first.pk + 1}' in frames[0]
    assert frames[-1] == '{"type": "resync", "data": {"reason": "too many missed messages"}}'
