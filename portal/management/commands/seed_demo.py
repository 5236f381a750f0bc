"""Demo data for `make run`: two organizations, an admin and a member in each, one agent.

Idempotent: re-running keeps what exists and resets the demo passwords. Each app adds its own
demo data in ``<app>/demo.py`` with a ``seed(*, organizations, agent, stdout)`` function.
"""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import module_has_submodule

from portal.models import Membership, Organization

DEMO_PASSWORD = "securebase-demo"  # noqa: S105 - printed for demo logins, never used in production

ORGANIZATIONS = [
    (
        "acme",
        "Acme Cloud",
        [("alice@acme.example", "Alice Admin", "admin"), ("bob@acme.example", "Bob Member", "member")],
    ),
    (
        "globex",
        "Globex Corp",
        [("gina@globex.example", "Gina Admin", "admin"), ("gus@globex.example", "Gus Member", "member")],
    ),
]
AGENT = ("agent@securebase.example", "Sam Support")


class Command(BaseCommand):
    help = "Create (or refresh) the demo organizations and logins. Safe to run repeatedly."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        logins: list[tuple[str, str]] = []
        organizations = []
        for slug, name, people in ORGANIZATIONS:
            organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
            organizations.append(organization)
            for email, full_name, role in people:
                user = _demo_user(User, email, full_name)
                Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": role})
                logins.append((email, f"{role} of {name}"))
        agent = _demo_user(User, AGENT[0], AGENT[1])
        if not (agent.is_staff and agent.is_superuser):
            agent.is_staff = agent.is_superuser = True
            agent.save(update_fields=["is_staff", "is_superuser"])
        logins.append((AGENT[0], "support agent (Django admin at /admin/)"))
        for app in apps.get_app_configs():
            if module_has_submodule(app.module, "demo"):
                import_module(f"{app.name}.demo").seed(organizations=organizations, agent=agent, stdout=self.stdout)

        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for email, what in logins:
            self.stdout.write(f"  {email:<28} {what}")


def _demo_user(User, email: str, full_name: str):
    first, _, last = full_name.partition(" ")
    user, created = User.objects.get_or_create(
        username=email, defaults={"email": email, "first_name": first, "last_name": last}
    )
    if created or not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user
