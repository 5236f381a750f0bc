"""Re-seal every endpoint's signing secret with the current WEBHOOK_SECRET_KEY (key rotation)."""

from django.core.management.base import BaseCommand

from webhooks import services


class Command(BaseCommand):
    help = (
        "Re-encrypt webhook signing secrets with the first key of WEBHOOK_SECRET_KEY. Run after putting a "
        "new key first (old keys after it); when it reports 0 to do, remove the old keys."
    )

    def handle(self, *args, **options) -> None:
        count = services.endpoint_secrets_reencrypt()
        self.stdout.write(f"Re-encrypted the secrets of {count} endpoint(s).")
