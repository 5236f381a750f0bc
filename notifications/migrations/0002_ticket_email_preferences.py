"""Ticket e-mails now follow the ``ticket`` preference, whose default became e-mail.

Before, ticket e-mails went out whatever that preference said, and saving the preferences page
stored a row for every type, so many users have ``ticket: in_app`` stored that they never chose
against e-mail. Those rows go: the users keep getting the ticket e-mails they got before (the
default), and can turn them off from now on.
"""

from django.db import migrations


def forget_unchosen_ticket_preferences(apps, schema_editor):
    Preference = apps.get_model("notifications", "Preference")
    Preference.objects.filter(kind="ticket", channel="in_app", digest="immediate").delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(forget_unchosen_ticket_preferences, migrations.RunPython.noop)]
