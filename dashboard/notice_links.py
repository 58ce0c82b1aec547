"""Signed links in notice e-mails: cancel or approve an order in one click after signing in.

The link names the order, the action and the shopper, and expires when the action stops
making sense (the end of the cancel window); it never replaces the login.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from orders.services.notice_delivery import Outgoing

SALT = "restock.notice-action"
ACTIONS = ("cancel", "approve", "reject")
# An approval link stays good this long (the order waits for the shopper meanwhile).
APPROVAL_LINK_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class SignedAction:
    """What a valid link asks: this action on this order, for this shopper, until then."""

    order_id: str
    action: str
    shopper_id: int
    expires_at: datetime


class NoticeLinks:
    """Makes and checks the links; one secret for both (the app's secret key)."""

    def __init__(self, secret_key: str, public_url: str) -> None:
        self._signer = URLSafeSerializer(secret_key, salt=SALT)
        self.public_url = public_url.rstrip("/")

    def sign(self, order_id: str, action: str, shopper_id: int, expires_at: datetime) -> str:
        """A token for one action on one order, good until `expires_at`."""
        return str(self._signer.dumps([order_id, action, shopper_id, int(expires_at.timestamp())]))

    def check(self, token: str, now: datetime) -> SignedAction | None:
        """The action a token asks for, or None when forged, malformed or expired."""
        try:
            order_id, action, shopper_id, expires = self._signer.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        if action not in ACTIONS or not isinstance(shopper_id, int):
            return None
        if not isinstance(order_id, str) or not isinstance(expires, int):
            return None
        expires_at = datetime.fromtimestamp(expires, UTC)
        if now >= expires_at:
            return None
        return SignedAction(order_id, action, shopper_id, expires_at)

    def url(self, token: str) -> str:
        """Where the link points: a page that asks to sign in, then for one click."""
        return f"{self.public_url}/my/notifications/act/{token}"

    def __call__(self, item: Outgoing) -> list[str]:
        """The lines an e-mail adds under its text: what to click, and where to see more."""
        lines = []
        order = item.order_id
        if item.kind == "order_placed" and order and item.data.get("cancel_until"):
            until = datetime.fromisoformat(str(item.data["cancel_until"]).replace("Z", "+00:00"))
            token = self.sign(order, "cancel", item.shopper_id, until)
            lines.append(f"Cancel it (until the window closes): {self.url(token)}")
        if item.kind == "approval_needed" and order:
            until = datetime.now(UTC) + APPROVAL_LINK_LIFETIME
            for action in ("approve", "reject"):
                token = self.sign(order, action, item.shopper_id, until)
                lines.append(f"{action.capitalize()}: {self.url(token)}")
        if order:
            lines.append(f"See the order: {self.public_url}/my/orders/{order}")
        lines.append(f"Choose which e-mails you get: {self.public_url}/my/notifications/settings")
        return lines
