"""What webhooks do when events happen: every public event becomes a message for its endpoints.

Runs inside the dispatch transaction (see portal.events): it only writes the message and
delivery rows; the first attempts are enqueued after that transaction commits.
"""

from __future__ import annotations

from portal import events
from portal.models import Event
from webhooks import services


@events.subscribe(name="webhooks.fan_out")
def fan_out(event: Event) -> None:
    services.deliveries_fan_out(event=event)
