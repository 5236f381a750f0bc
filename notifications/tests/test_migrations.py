"""Data migrations on real rows: migrate back, write the old state, migrate forward."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from portal.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = ("notifications", "0001_initial"), ("notifications", "0002_ticket_email_preferences")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def test_ticket_preferences_the_old_page_stored_by_default_are_forgotten():
    """The old preferences page stored ``ticket: in_app`` for everyone who pressed Save, while ticket
    e-mails went out anyway: after the migration those people keep getting them (the default)."""
    saved_page, chose_off, chose_digest = (MembershipFactory().user for _ in range(3))
    Preference = _migrate(BEFORE).get_model("notifications", "Preference")
    Preference.objects.create(user_id=saved_page.pk, kind="ticket", channel="in_app", digest="immediate")
    Preference.objects.create(user_id=saved_page.pk, kind="billing", channel="in_app", digest="immediate")
    Preference.objects.create(user_id=chose_off.pk, kind="ticket", channel="off", digest="immediate")
    Preference.objects.create(user_id=chose_digest.pk, kind="ticket", channel="email", digest="daily")
    Preference = _migrate(AFTER).get_model("notifications", "Preference")
    left = set(Preference.objects.values_list("user_id", "kind", "channel", "digest"))
    assert left == {
        (saved_page.pk, "billing", "in_app", "immediate"),
        (chose_off.pk, "ticket", "off", "immediate"),
        (chose_digest.pk, "ticket", "email", "daily"),
    }
