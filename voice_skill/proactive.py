"""Alexa notifications through the Proactive Events API: the event payloads, and a client
that takes a Login with Amazon token (client credentials) and posts them.

Behind settings (RESTOCK_ALEXA_EVENTS_URL, RESTOCK_ALEXA_EVENTS_CLIENT_ID/_SECRET); nothing
is sent without them.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
SCOPE = "alexa::proactive_events"
# Alexa drops an event it could not deliver by then; a day is as long as it allows.
EXPIRY = timedelta(hours=23)
TIMEOUT_SECONDS = 10.0
# Notice kind -> the order status Alexa says ("Your order from <store> has shipped").
ORDER_STATUS = {
    "order_placed": "ORDER_RECEIVED",
    "order_shipped": "ORDER_SHIPPED",
    "order_delayed": "ORDER_SHIPPED",
    "order_delivered": "ORDER_DELIVERED",
}
# Notices that need the shopper's attention rather than news of an order.
URGENT = {"approval_needed", "link_attempted", "voice_locked"}


class ProactiveError(Exception):
    """Alexa (or Login with Amazon) refused or did not answer."""


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_for(
    kind: str,
    data: dict[str, Any],
    *,
    user_id: str,
    store_name: str,
    now: datetime,
    reference_id: str | None = None,
    locale: str = "en-US",
) -> dict[str, Any]:
    """The Proactive Events body for one notice to one Alexa user (a unicast event)."""
    event: dict[str, Any]
    if kind in ORDER_STATUS:
        state: dict[str, Any] = {"status": ORDER_STATUS[kind]}
        if kind in ("order_shipped", "order_delayed") and data.get("expected"):
            state["deliveryDetails"] = {"expectedArrival": data["expected"]}
        event = {
            "name": "AMAZON.OrderStatus.Updated",
            "payload": {
                "state": state,
                "order": {"seller": {"name": "localizedattribute:sellerName"}},
            },
        }
    else:
        event = {
            "name": "AMAZON.MessageAlert.Activated",
            "payload": {
                "state": {"status": "UNREAD", "freshness": "NEW"},
                "messageGroup": {
                    "creator": {"name": "localizedattribute:sellerName"},
                    "count": 1,
                    "urgency": "URGENT" if kind in URGENT else "NORMAL",
                },
            },
        }
    return {
        "timestamp": _iso(now),
        "referenceId": reference_id or str(uuid.uuid4()),
        "expiryTime": _iso(now + EXPIRY),
        "event": event,
        "localizedAttributes": [{"locale": locale, "sellerName": store_name}],
        "relevantAudience": {"type": "Unicast", "payload": {"user": user_id}},
    }


@dataclass(frozen=True)
class ProactiveSettings:
    """Where events go and the skill's credentials for them."""

    events_url: str
    client_id: str
    client_secret: str
    token_url: str = LWA_TOKEN_URL


class ProactiveClient:
    """Posts events, with an access token kept until shortly before it expires."""

    def __init__(self, settings: ProactiveSettings, session: requests.Session | None = None):
        self.settings = settings
        self._http = session or requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def send(self, event: dict[str, Any]) -> None:
        """Deliver one event; ProactiveError when Alexa does not accept it."""
        response = self._post(event, self._access_token())
        if response.status_code == 401:  # revoked or rotated early: one fresh token
            response = self._post(event, self._access_token(renew=True))
        if response.status_code not in (200, 202):
            raise ProactiveError(f"Alexa answered {response.status_code}: {response.text[:200]}")

    def _post(self, event: dict[str, Any], token: str) -> requests.Response:
        try:
            return self._http.post(
                self.settings.events_url,
                json=event,
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT_SECONDS,
            )
        except requests.RequestException as exc:
            raise ProactiveError(f"Alexa did not answer: {exc}") from exc

    def _access_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = self._fetch_token()
                # Renewed a minute early, so a token never expires on the way.
                self._expires = time.monotonic() + max(lifetime - 60, 0)
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        try:
            response = self._http.post(
                self.settings.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.settings.client_id,
                    "client_secret": self.settings.client_secret,
                    "scope": SCOPE,
                },
                timeout=TIMEOUT_SECONDS,
            )
        except requests.RequestException as exc:
            raise ProactiveError(f"Login with Amazon did not answer: {exc}") from exc
        if response.status_code != 200:
            raise ProactiveError(f"Login with Amazon answered {response.status_code}")
        body = response.json()
        token = body.get("access_token")
        if not isinstance(token, str):
            raise ProactiveError("Login with Amazon gave no access token")
        return token, float(body.get("expires_in", 3600))
