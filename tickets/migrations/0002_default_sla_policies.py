from django.db import migrations

# Product spec: first response critical 1 h, high 4 h, medium 24 h, low 48 h. Resolution
# targets are our defaults; staff edit both in admin.
DEFAULTS = {
    "critical": (60, 8 * 60),
    "high": (4 * 60, 24 * 60),
    "medium": (24 * 60, 3 * 24 * 60),
    "low": (48 * 60, 7 * 24 * 60),
}


def create_policies(apps, schema_editor):
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    for priority, (first, resolution) in DEFAULTS.items():
        SlaPolicy.objects.get_or_create(
            priority=priority, defaults={"first_response_minutes": first, "resolution_minutes": resolution}
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]
    operations = [migrations.RunPython(create_policies, migrations.RunPython.noop)]
