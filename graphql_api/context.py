"""What every resolver receives: the caller, resolved once per request or socket."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portal.models import Membership, Organization
from tickets import services as ticket_services


@dataclass
class Context:
    user: Any
    membership: Membership
    request: Any = None  # the DRF request (HTTP)
    ws: Any = None  # the consumer (subscriptions)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def organization(self) -> Organization:
        return self.membership.organization

    @property
    def agent(self) -> bool:
        """Support agents see internal notes; customers never do (the REST API's rule)."""
        return ticket_services.is_agent(self.user)
