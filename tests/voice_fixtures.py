"""Voice-skill test helpers: a store with an Alexa-linked shopper, and Alexa-shaped requests."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from auth.model import OAuthClient
from auth.principal import SHOPPER_SCOPES
from auth.tokens import issue_token
from orders.services.catalog import (
    SlotSpec,
    add_product,
    create_device_model,
    create_store,
)
from orders.services.consent import set_pin_threshold, set_voice_pin
from orders.services.devices import LinkRules, link_device, register_device
from orders.store.db import Database, utcnow
from tests.factories import shopper_with_address

SKILL_ID = "amzn1.ask.skill.5c3e1d7a-0f44-4b7e-9a11-6d2f0c8e9b21"

# sku, name, price_minor, stock, aliases: a small catalog with one deliberate near-collision.
CATALOG = [
    ("COF-PODS-50", "Coffee pods (50)", 1599, 100, ["coffee pods", "pods"]),
    ("COF-BEANS-1K", "Coffee beans 1 kg", 2199, 100, ["coffee beans", "beans"]),
    ("BAT-AA-8", "AA batteries (8)", 899, 100, ["double a batteries"]),
    ("SALT-PEP", "Salt & Pepper <set>", 450, 5, ["salt and pepper"]),
]


@dataclass(frozen=True)
class VoiceWorld:
    """A store, its catalog, an Alexa client and a shopper linked through it."""

    store_id: int
    shopper_id: int
    alexa_client_id: str
    token: str
    appliance_device_id: int


def build_voice_world(
    db: Database,
    *,
    pin: str | None = None,
    pin_threshold_minor: int | None = None,
    lead_time_days: float = 2.0,
    cancel_window_minutes: int = 30,
    scope: str = SHOPPER_SCOPES,
    slug: str = "voice",
) -> VoiceWorld:
    """Build it through the domain's own functions; the token is what account linking issues."""
    with db.write() as session:
        store = create_store(
            session,
            slug=slug,
            name="Corner & Co",
            currency="EUR",
            cancel_window_minutes=cancel_window_minutes,
            lead_time_days=lead_time_days,
        )
        for sku, name, price, stock, aliases in CATALOG:
            add_product(
                session, store, sku=sku, name=name, price_minor=price, stock=stock, aliases=aliases
            )
        shopper = shopper_with_address(session, name="Ada", email=f"ada@{slug}.test")
        client = OAuthClient(
            client_id=f"alexa-{secrets.token_hex(6)}",
            name="Alexa account linking",
            kind="alexa",
            store_id=store.id,
            scope=SHOPPER_SCOPES,
        )
        session.add(client)
        machine = create_device_model(
            session, store, name="Coffee machine", kind="appliance",
            slots=[SlotSpec("pods", "count", 50, "COF-PODS-50", 50)], security="bearer",
        )  # fmt: skip
        device = register_device(session, machine, "CM-1")
        link_device(session, device, shopper, LinkRules(product_sku="COF-PODS-50"))
        issued = issue_token(
            session,
            client_id=client.client_id,
            kind="shopper",
            scope=scope,
            shopper_id=shopper.id,
            store_id=store.id,
        )
        world = VoiceWorld(store.id, shopper.id, client.client_id, issued.access_token, device.id)
    if pin is not None:
        set_voice_pin(db, world.shopper_id, pin)
    if pin_threshold_minor is not None:
        set_pin_threshold(db, world.shopper_id, pin_threshold_minor)
    return world


def _slot(name: str, value: str | None, ids: tuple[str, ...] = ()) -> dict[str, Any]:
    slot: dict[str, Any] = {"name": name, "confirmationStatus": "NONE"}
    if value is not None:
        slot["value"] = value
        slot["source"] = "USER"
    if ids:
        slot["resolutions"] = {
            "resolutionsPerAuthority": [
                {
                    "authority": f"amzn1.er-authority.echo-sdk.{SKILL_ID}.RestockProduct",
                    "status": {"code": "ER_SUCCESS_MATCH"},
                    "values": [{"value": {"name": value, "id": sku}} for sku in ids],
                }
            ]
        }
    elif value is not None and name == "product":
        slot["resolutions"] = {
            "resolutionsPerAuthority": [
                {
                    "authority": f"amzn1.er-authority.echo-sdk.{SKILL_ID}.RestockProduct",
                    "status": {"code": "ER_SUCCESS_NO_MATCH"},
                }
            ]
        }
    return slot


def intent(
    name: str, *, ids: dict[str, tuple[str, ...]] | None = None, **slots: str | None
) -> dict[str, Any]:
    """An IntentRequest body part; `ids` adds entity-resolution matches to a slot."""
    ids = ids or {}
    return {
        "type": "IntentRequest",
        "dialogState": "COMPLETED",
        "intent": {
            "name": name,
            "confirmationStatus": "NONE",
            "slots": {key: _slot(key, value, ids.get(key, ())) for key, value in slots.items()},
        },
    }


def launch() -> dict[str, Any]:
    """A LaunchRequest body part."""
    return {"type": "LaunchRequest"}


def session_ended(reason: str = "USER_INITIATED") -> dict[str, Any]:
    """A SessionEndedRequest body part."""
    return {"type": "SessionEndedRequest", "reason": reason}


def envelope(
    request: dict[str, Any],
    *,
    token: str | None,
    attributes: dict[str, Any] | None = None,
    new: bool = False,
    session_id: str = "amzn1.echo-api.session.0001",
    now: datetime | None = None,
    skill_id: str = SKILL_ID,
) -> dict[str, Any]:
    """A whole request envelope shaped like Alexa's (version, session, context, request)."""
    application = {"applicationId": skill_id}
    user: dict[str, Any] = {"userId": "amzn1.ask.account.AF3EXAMPLE"}
    if token is not None:
        user["accessToken"] = token
    stamp = (now or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "1.0",
        "session": {
            "new": new,
            "sessionId": session_id,
            "application": dict(application),
            "attributes": dict(attributes or {}),
            "user": dict(user),
        },
        "context": {
            "System": {
                "application": dict(application),
                "user": dict(user),
                "device": {
                    "deviceId": "amzn1.ask.device.AEXAMPLE",
                    "supportedInterfaces": {},
                },
                "apiEndpoint": "https://api.amazonalexa.com",
                "apiAccessToken": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.example",
            }
        },
        "request": {
            "requestId": f"amzn1.echo-api.request.{secrets.token_hex(8)}",
            "timestamp": stamp,
            "locale": "en-US",
            **request,
        },
    }


Send = Callable[[bytes], tuple[int, dict[str, Any]]]


@dataclass
class Conversation:
    """A session with the skill: session attributes flow from each answer into the next request."""

    send: Send
    token: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    last_body: bytes = b""
    turns: int = 0

    def say(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request in this session and return the response envelope."""
        body = json.dumps(
            envelope(request, token=self.token, attributes=self.attributes, new=self.turns == 0)
        ).encode()
        return self._post(body)

    def retry(self) -> dict[str, Any]:
        """Send the previous request again, byte for byte, as Alexa does when it got no answer."""
        return self._post(self.last_body)

    def _post(self, body: bytes) -> dict[str, Any]:
        status, answer = self.send(body)
        assert status == 200, answer
        self.last_body = body
        self.turns += 1
        self.attributes = answer.get("sessionAttributes") or {}
        return answer


def speech_of(answer: dict[str, Any]) -> str:
    """The SSML the skill spoke, or '' for none."""
    speech = (answer.get("response") or {}).get("outputSpeech") or {}
    return str(speech.get("ssml", ""))


def ends_session(answer: dict[str, Any]) -> bool:
    """True when the answer closes the session (no reprompt)."""
    return bool((answer.get("response") or {}).get("shouldEndSession"))


def ago(**delta: float) -> datetime:
    """A moment in the past."""
    return utcnow() - timedelta(**delta)


# app_factory settings for talking to /alexa: signature checks off, only our skill's requests.
VOICE_SETTINGS: dict[str, Any] = {"alexa_verify": False, "alexa_skill_id": SKILL_ID}


def flask_sender(app: Flask, headers: Callable[[bytes], dict[str, str]] | None = None) -> Send:
    """Post bodies to /alexa through the Flask test client."""
    client = app.test_client()

    def send(body: bytes) -> tuple[int, dict[str, Any]]:
        extra = headers(body) if headers is not None else {}
        response = client.post("/alexa", data=body, content_type="application/json", headers=extra)
        return response.status_code, response.get_json()

    return send


class Clock:
    """A clock tests can move; it starts at the real now so tokens and timestamps agree."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.offset += timedelta(**delta)


def fresh_token(db: Database, world: VoiceWorld, now: datetime, scope: str = SHOPPER_SCOPES) -> str:
    """Another account-linking access token for the world's shopper, issued at `now`."""
    with db.write() as session:
        return issue_token(
            session,
            client_id=world.alexa_client_id,
            kind="shopper",
            scope=scope,
            shopper_id=world.shopper_id,
            store_id=world.store_id,
            now=now,
        ).access_token
