import pytest
from django.core import mail
from django.db import transaction

from notifications import services
from notifications.models import Notification, Push
from notifications.tests.conftest import dispatch_all, publish
from portal import events
from portal.models import Event
from portal.tests.factories import MembershipFactory
from tickets import services as ticket_services
from tickets.models import Status

pytestmark = pytest.mark.django_db


def _inbox(user):
    return list(Notification.objects.filter(recipient=user).order_by("id").values_list("title", flat=True))


def test_agent_reply_notifies_requester_and_followers_but_not_the_agent(ticket, member, agent, organization):
    follower = MembershipFactory(organization=organization)
    ticket_services.ticket_follow(ticket=ticket, user=follower.user)
    dispatch_all()
    ticket_services.comment_create(ticket=ticket, author=agent, body="We restarted the database.")
    dispatch_all()
    assert _inbox(member.user) == [f"Support replied on #1001: {ticket.subject}"]
    assert _inbox(follower.user) == [f"Support replied on #1001: {ticket.subject}"]
    assert _inbox(agent) == []


def test_the_actor_is_never_notified_of_their_own_change(ticket, member):
    ticket_services.comment_create(ticket=ticket, author=member.user, body="Any news?")
    dispatch_all()
    assert _inbox(member.user) == []  # created and replied themselves


def test_assignee_hears_about_customer_replies(ticket, member, agent):
    ticket_services.ticket_update(ticket=ticket, actor=agent, assignee=agent)
    ticket_services.comment_create(ticket=ticket, author=member.user, body="Still slow")
    dispatch_all()
    assert _inbox(agent) == [f"A customer replied on #1001: {ticket.subject}"]


def test_internal_notes_never_notify_customers(ticket, member, agent):
    dispatch_all()
    ticket_services.comment_create(ticket=ticket, author=agent, body="secret", internal=True)
    dispatch_all()
    assert _inbox(member.user) == []
    assert "secret" not in str(list(Push.objects.values_list("html", flat=True)))


def test_updates_to_one_ticket_coalesce_into_one_unread_notification(ticket, member, agent):
    ticket_services.ticket_update(ticket=ticket, actor=agent, status=Status.IN_PROGRESS)
    ticket_services.comment_create(ticket=ticket, author=agent, body="On it")
    ticket_services.ticket_update(ticket=ticket, actor=agent, priority="high")
    dispatch_all()
    [row] = Notification.objects.filter(recipient=member.user)
    assert row.updates == 3 and row.title == "#1001 priority is now High"
    services.notifications_mark_read(user=member.user, organization=ticket.organization)
    ticket_services.comment_create(ticket=ticket, author=agent, body="Fixed")
    dispatch_all()
    assert Notification.objects.filter(recipient=member.user).count() == 2  # read row kept, new unread row


def test_sla_breach_is_an_alert_for_the_ticket_people(ticket, member):
    from datetime import timedelta

    ticket_services.sla_sweep(now=ticket.sla_started_at + timedelta(hours=25))
    dispatch_all()
    kinds = set(Notification.objects.filter(recipient=member.user).values_list("kind", flat=True))
    assert kinds == {"alert"}
    assert "missed its first response target" in " ".join(_inbox(member.user))


def test_billing_and_compliance_go_to_org_admins_only(organization, member, admin_member):
    publish(
        events.INVOICE_CREATED,
        organization,
        {
            "invoice": "INV-7",
            "amount": "120.50",
            "currency": "EUR",
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
        },
    )
    publish(events.COMPLIANCE_UPDATED, organization, {"framework": "SOC 2", "status": "failing"})
    assert _inbox(admin_member.user) == ["New invoice INV-7: 120.50 EUR", "SOC 2 compliance is failing"]
    assert _inbox(member.user) == []


def test_many_recipients_cost_two_queries_one_insert(organization, django_assert_num_queries):
    ids = [MembershipFactory(organization=organization).user_id for _ in range(40)]
    with django_assert_num_queries(2):  # preferences, then one multi-row INSERT
        created = services.notify(organization=organization, recipient_ids=ids, kind="info", title="Hello")
    assert len(created) == 40 and all(c.new for c in created)


def test_platform_notices_reach_the_whole_organization(organization, member, admin_member):
    for _ in range(20):
        MembershipFactory(organization=organization)
    publish(events.NOTICE_PUBLISHED, organization, {"title": "Maintenance Sunday 02:00 UTC"})
    assert Notification.objects.filter(title="Maintenance Sunday 02:00 UTC").count() == 22


def test_metrics_updates_are_pushed_not_notified(organization, member):
    publish(events.METRICS_UPDATED, organization, {"metrics": {"cpu_percent": 71}})
    assert not Notification.objects.exists()
    push = Push.objects.get(type="metrics_update")
    assert push.user is None and push.data == {"metrics": {"cpu_percent": 71}}
    assert 'id="platform-metrics"' in push.html and "71" in push.html


def test_preferences_off_means_nothing_but_alerts_stay_on(organization, admin_member):
    services.preferences_update(user=admin_member.user, choices={"billing": {"channel": "off"}})
    publish(
        events.INVOICE_CREATED,
        organization,
        {
            "invoice": "INV-8",
            "amount": "1",
            "currency": "EUR",
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
        },
    )
    assert _inbox(admin_member.user) == []
    with pytest.raises(Exception, match="Alerts can't be turned off"):
        services.preferences_update(user=admin_member.user, choices={"alert": {"channel": "off"}})
    publish(events.WEBHOOK_ENDPOINT_DISABLED, organization, {"endpoint": "ep_1", "reason": "410 Gone"})
    assert _inbox(admin_member.user) == ["A webhook endpoint was disabled"]


def test_email_preference_sends_email_and_digest_batches(organization, admin_member):
    services.preferences_update(
        user=admin_member.user,
        choices={"billing": {"channel": "email", "digest": "hourly"}, "compliance": {"channel": "email"}},
    )
    publish(
        events.INVOICE_CREATED,
        organization,
        {
            "invoice": "INV-9",
            "amount": "9",
            "currency": "EUR",
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
        },
    )
    publish(
        events.INVOICE_CREATED,
        organization,
        {
            "invoice": "INV-10",
            "amount": "10",
            "currency": "EUR",
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
        },
    )
    publish(events.COMPLIANCE_UPDATED, organization, {"framework": "ISO 27001", "status": "warning"})
    assert services.notification_emails_send(digest="immediate") == 1
    assert [m.subject for m in mail.outbox] == ["ISO 27001 compliance is warning"]
    assert services.notification_emails_send(digest="hourly") == 1
    assert mail.outbox[1].subject == "Your hourly SecureBase summary: 2 update(s)"
    assert "INV-9" in mail.outbox[1].body and "INV-10" in mail.outbox[1].body
    assert services.notification_emails_send(digest="hourly") == 0  # never twice


def test_in_app_only_sends_no_email(organization, admin_member):
    publish(events.COMPLIANCE_UPDATED, organization, {"framework": "SOC 2", "status": "passing"})
    assert services.notification_emails_send(digest="immediate") == 0
    assert mail.outbox == []


def test_every_push_carries_the_whole_unread_count(ticket, member, agent):
    ticket_services.comment_create(ticket=ticket, author=agent, body="one")
    dispatch_all()
    other = ticket_services.ticket_create(
        organization=ticket.organization, requester=member.user, subject="Other", description="d"
    )
    dispatch_all()
    ticket_services.comment_create(ticket=other, author=agent, body="two")
    dispatch_all()
    counts = [p.data["unread"] for p in Push.objects.filter(user=member.user, type="notification").order_by("id")]
    assert counts == [1, 2]
    last = Push.objects.filter(user=member.user, type="notification").latest("id")
    assert 'id="notification-badge"' in last.html and ">2<" in last.html


def test_fan_out_costs_the_same_queries_for_10_or_40_recipients(organization):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def dispatch_notice(title):
        with transaction.atomic():
            events.publish(events.NOTICE_PUBLISHED, organization=organization, data={"title": title})
        event_id = Event.objects.get(payload__title=title).pk
        with CaptureQueriesContext(connection) as queries:
            events.event_dispatch(event_id=event_id)
        return len(queries)

    for _ in range(10):
        MembershipFactory(organization=organization)
    small = dispatch_notice("first")
    for _ in range(30):
        MembershipFactory(organization=organization)
    large = dispatch_notice("second")
    assert small == large
    assert Push.objects.filter(type="notification").count() == 50


def test_metrics_updates_skip_the_notify_subscriber(organization):
    # notify runs a transaction per event it handles: only for the types that make notifications.
    assert "notifications.notify" not in {s.name for s in events.subscribers_for(events.METRICS_UPDATED)}
    for event_type in (events.TICKET_COMMENT_ADDED, events.NOTICE_PUBLISHED, events.WEBHOOK_ENDPOINT_DISABLED):
        assert "notifications.notify" in {s.name for s in events.subscribers_for(event_type)}


def test_pushes_made_in_a_worker_are_sent_at_commit_without_a_second_task(
    organization, monkeypatch, django_capture_on_commit_callbacks
):
    sent, enqueued = [], []
    monkeypatch.setattr(services, "_in_worker_task", lambda: True)
    monkeypatch.setattr(services, "pushes_send", lambda rows: sent.append([row.pk for row in rows]))
    monkeypatch.setattr(services, "_enqueue_send", lambda push_ids: enqueued.append(push_ids))
    with django_capture_on_commit_callbacks(execute=True):
        push = services.push_create(organization=organization, type="metrics_update", data={})
        assert sent == []  # nothing before commit
    assert sent == [[push.pk]] and enqueued == []


def test_pushes_sent_at_commit_reach_their_group_without_being_read_back(
    organization, member, monkeypatch, django_capture_on_commit_callbacks
):
    from channels.layers import get_channel_layer
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal import realtime

    layer = get_channel_layer()
    channel = realtime._layer_loop.run(layer.new_channel())
    realtime._layer_loop.run(layer.group_add(realtime.user_group(member.user_id), channel))
    monkeypatch.setattr(services, "_in_worker_task", lambda: True)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        push = services.push_create(
            organization=organization, user_id=member.user_id, type="notification", data={"unread": 1}, html="<b/>"
        )
    message = realtime._layer_loop.run(layer.receive(channel))
    push.refresh_from_db()
    assert message == services.push_message(push)  # what a re-read (and resume) would send
    assert push.sent_at is not None
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert statements == ["INSERT", "UPDATE"]  # the row, then its sent_at: no SELECT in between


def test_pushes_are_recorded_with_one_insert_as_a_re_read_returns_them(
    organization, member, admin_member, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert services.pushes_create(organization=organization, pushes=[]) == []
    pushes = [
        {"user_id": member.user_id, "type": "notification", "data": {"unread": 2, "n": {"t": "ü"}}, "html": "<a/>"},
        {"user_id": admin_member.user_id, "type": "notification", "data": {"unread": 0}, "html": ""},
        {"user_id": None, "type": "metrics_update", "data": {"metrics": {"cpu": 1.5}}, "html": "<m/>"},
    ]
    with django_assert_num_queries(1):
        rows = services.pushes_create(organization=organization, pushes=pushes)
    assert [r.pk for r in rows] == sorted(r.pk for r in rows)
    stored = {p.pk: p for p in Push.objects.filter(pk__in=[r.pk for r in rows])}
    assert [services.push_message(r) for r in rows] == [services.push_message(stored[r.pk]) for r in rows]


def test_pushes_made_outside_a_worker_go_to_a_worker(organization, monkeypatch, django_capture_on_commit_callbacks):
    enqueued = []
    monkeypatch.setattr(services, "_enqueue_send", lambda push_ids: enqueued.append(push_ids))
    with django_capture_on_commit_callbacks(execute=True):
        push = services.push_create(organization=organization, type="metrics_update", data={})
    assert services._in_worker_task() is False
    assert enqueued == [[push.pk]]


def test_inbox_states_give_each_user_their_own_latest_ten_newest_first(
    organization, member, admin_member, other_member, django_assert_num_queries
):
    from notifications import selectors

    for i in range(12):
        services.notify(organization=organization, recipient_ids=[member.user_id], kind="info", title=f"m{i}")
    services.notify(organization=organization, recipient_ids=[admin_member.user_id], kind="info", title="a0")
    # The same user in another organization: not part of this organization's inbox.
    services.notify(
        organization=other_member.organization, recipient_ids=[other_member.user_id], kind="info", title="other"
    )
    with django_assert_num_queries(1):
        states = selectors.inbox_states(
            organization=organization, user_ids=[member.user_id, admin_member.user_id, other_member.user_id]
        )
    assert [n.title for n in states[member.user_id].latest] == [f"m{i}" for i in range(11, 1, -1)]
    assert states[member.user_id].unread == 12
    assert [n.title for n in states[admin_member.user_id].latest] == ["a0"]
    assert states[other_member.user_id].latest == [] and states[other_member.user_id].unread == 0
    assert selectors.inbox_states(organization=organization, user_ids=[]) == {}


def test_a_tickets_live_push_reads_three_queries_and_never_carries_internal_notes(
    ticket, member, agent, django_assert_num_queries
):
    from tickets import selectors as ticket_selectors

    ticket_services.comment_create(ticket=ticket, author=agent, body="Public answer")
    ticket_services.comment_create(ticket=ticket, author=agent, body="secret", internal=True)
    ticket_services.comment_create(ticket=ticket, author=member.user, body="Thanks")
    with django_assert_num_queries(3):  # the ticket with its people, the thread, its files
        state = ticket_selectors.ticket_live_state(organization=ticket.organization, public_id=ticket.public_id)
    assert [c.body for c in state.comments] == ["Public answer", "Thanks"]
    assert state.history == [] and state.following is False  # nothing per-user, no audit trail
    dispatch_all()
    pushed = Push.objects.filter(type="ticket_update").latest("id")
    assert "Public answer" in pushed.html and "secret" not in pushed.html

    ticket.delete()
    with django_assert_num_queries(1):
        assert ticket_selectors.ticket_live_state(organization=ticket.organization, public_id=ticket.public_id) is None
