"""The device grant over HTTP (/oauth/device_authorization, /oauth/token) and the /link page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from auth.device_flow import unlink_device
from auth.model import DeviceCode
from auth.principal import InvalidToken
from auth.tokens import verify_access_token
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink
from tests.auth_fixtures import DEVICE_GRANT, OAuthWorld, build_oauth_world, login_as
from tests.factories import db_snapshot
from tests.web_helpers import csrf_token


@pytest.fixture
def o(db: Database) -> OAuthWorld:
    """Clients of every kind and a shopper account."""
    return build_oauth_world(db)


def _start(client: FlaskClient, client_id: str, serial: str = "SN-NEW") -> dict[str, object]:
    response = client.post(
        "/oauth/device_authorization", data={"client_id": client_id, "serial": serial}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.get_json()
    return body


def _poll(client: FlaskClient, client_id: str, device_code: object) -> TestResponse:
    return client.post(
        "/oauth/token",
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id},
    )


def _age_polls(db: Database, seconds: int = 60) -> None:
    """Pretend the last poll was long ago, so the next one is not `slow_down`."""
    with db.write() as session:
        session.execute(
            update(DeviceCode).values(last_polled_at=utcnow() - timedelta(seconds=seconds))
        )


def _approve(
    client: FlaskClient, user_code: str, decision: str = "approve", **fields: str
) -> TestResponse:
    page = client.post(
        "/link", data={"user_code": user_code, "csrf_token": csrf_token(client.get("/link").text)}
    )
    assert page.status_code == 200, page.text
    data = {"user_code": user_code, "decision": decision, "csrf_token": csrf_token(page.text)}
    data.update(fields)
    return client.post("/link", data=data)


def test_device_authorization_answers_the_rfc_8628_fields(
    client: FlaskClient, o: OAuthWorld
) -> None:
    """device_code, XXXX-XXXX user code, /link URIs, expires_in and interval."""
    body = _start(client, o.button)
    assert set(body) >= {"device_code", "user_code", "verification_uri",
                         "verification_uri_complete", "expires_in", "interval"}  # fmt: skip
    user_code = str(body["user_code"])
    assert len(user_code) == 9 and user_code[4] == "-"
    assert set(user_code.replace("-", "")) <= set("BCDFGHJKLMNPQRSTVWXZ")
    assert body["verification_uri"] == "http://restock.test/link"
    assert body["verification_uri_complete"] == f"http://restock.test/link?user_code={user_code}"
    assert body["interval"] == 5


def test_device_authorization_refuses_unknown_and_non_device_clients(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Unknown or secretless Alexa → invalid_client; a web app → unauthorized_client."""
    before = db_snapshot(db)
    for client_id, error in (("nope", "invalid_client"), (o.alexa, "invalid_client"),
                             (o.web, "unauthorized_client")):  # fmt: skip
        response = client.post("/oauth/device_authorization", data={"client_id": client_id})
        assert response.status_code in (400, 401)
        assert response.get_json()["error"] == error, client_id
    assert db_snapshot(db) == before


def test_poll_before_approval_is_pending_then_slow_down(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """First poll: authorization_pending; an immediate second poll: slow_down (interval grows)."""
    body = _start(client, o.button)
    first = _poll(client, o.button, body["device_code"])
    assert first.status_code == 400 and first.get_json()["error"] == "authorization_pending"
    second = _poll(client, o.button, body["device_code"])
    assert second.get_json()["error"] == "slow_down"
    with db.read() as session:
        assert session.scalar(select(DeviceCode.interval)) == 10


def test_expired_device_code_is_expired_token(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """A poll after expiry → expired_token."""
    body = _start(client, o.button)
    with db.write() as session:
        session.execute(update(DeviceCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert _poll(client, o.button, body["device_code"]).get_json()["error"] == "expired_token"


def test_unknown_or_foreign_or_missing_device_code(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Unknown or another model's code → invalid_grant; no code → invalid_request."""
    body = _start(client, o.button)
    before = db_snapshot(db)
    assert _poll(client, o.button, "x" * 43).get_json()["error"] == "invalid_grant"
    assert _poll(client, o.appliance, body["device_code"]).get_json()["error"] == "invalid_grant"
    response = client.post("/oauth/token", data={"grant_type": DEVICE_GRANT, "client_id": o.button})
    assert response.get_json()["error"] == "invalid_request"
    assert db_snapshot(db) == before


def test_link_page_needs_sign_in(client: FlaskClient) -> None:
    """Signed out, /link redirects to /login?next=/link…."""
    response = client.get("/link?user_code=BCDF-GHJK")
    assert response.status_code == 302
    assert unquote(response.headers["Location"]) == "/login?next=/link?user_code=BCDF-GHJK"


def test_link_page_prefills_the_code_and_is_labelled(client: FlaskClient, o: OAuthWorld) -> None:
    """`/link?user_code=…` prefills the field; the field has a label and the form a CSRF token."""
    login_as(client, o.shopper_account_id)
    page = client.get("/link?user_code=BCDF-GHJK")
    assert 'value="BCDF-GHJK"' in page.text
    assert '<label for="user_code"' in page.text and 'name="csrf_token"' in page.text
    assert "<h1>" in page.text


def test_shopper_links_a_button_and_the_device_gets_one_token(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Code typed lower-case without dash → confirmation → approve with rules → token once."""
    body = _start(client, o.button, serial="SN-NEW")
    assert (
        _poll(client, o.button, body["device_code"]).get_json()["error"] == "authorization_pending"
    )
    login_as(client, o.shopper_account_id)
    typed = str(body["user_code"]).replace("-", "").lower()
    page = client.post(
        "/link", data={"user_code": typed, "csrf_token": csrf_token(client.get("/link").text)}
    )
    assert page.status_code == 200
    assert "Button" in page.text and 'name="product"' in page.text and "PODS" in page.text
    assert 'name="approval_required"' in page.text and 'name="per_order_cap"' in page.text
    done = client.post("/link", data={
        "user_code": str(body["user_code"]), "decision": "approve", "product": "PODS",
        "approval_required": "y", "per_order_cap": "12.50", "monthly_cap": "40",
        "csrf_token": csrf_token(page.text),
    })  # fmt: skip
    assert done.status_code == 200 and "linked" in done.text
    _age_polls(db)
    token = _poll(client, o.button, body["device_code"])
    assert token.status_code == 200, token.text
    issued = token.get_json()
    principal = verify_access_token(db, issued["access_token"], "orders:place")
    assert principal.kind == "device" and principal.device_id == issued["device_id"]
    with db.read() as session:
        link = session.get(DeviceLink, principal.link_id)
        assert link is not None and link.approval_required
        assert (link.per_order_cap_minor, link.monthly_cap_minor) == (1250, 4000)
        assert link.product is not None and link.product.sku == "PODS"
    _age_polls(db)
    before = db_snapshot(db)
    again = _poll(client, o.button, body["device_code"])
    assert again.get_json()["error"] == "invalid_grant", "a device code is redeemed once"
    assert db_snapshot(db) == before


def test_appliance_confirmation_offers_a_reorder_point(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """An appliance's page has the reorder point; approving stores it on the link."""
    body = _start(client, o.appliance, serial="CM-1")
    login_as(client, o.shopper_account_id)
    done = _approve(client, str(body["user_code"]), product="PODS", reorder_point="8")
    assert done.status_code == 200, done.text
    with db.read() as session:
        link = session.scalar(select(DeviceLink).order_by(DeviceLink.id.desc()))
        assert link is not None and link.reorder_point == 8


def test_denying_on_the_link_page_is_access_denied_for_the_device(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Deny → the device's next poll is access_denied and nothing is linked."""
    body = _start(client, o.button)
    login_as(client, o.shopper_account_id)
    links_before = db_snapshot(db)["device_links"]
    done = _approve(client, str(body["user_code"]), decision="deny")
    assert done.status_code == 200 and "denied" in done.text
    assert _poll(client, o.button, body["device_code"]).get_json()["error"] == "access_denied"
    assert db_snapshot(db)["device_links"] == links_before


def test_link_decision_without_csrf_changes_nothing(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """A forged approve without the CSRF token is refused; the device stays pending."""
    body = _start(client, o.button)
    login_as(client, o.shopper_account_id)
    before = db_snapshot(db)
    response = client.post("/link", data={"user_code": body["user_code"], "decision": "approve",
                                          "product": "PODS"})  # fmt: skip
    assert response.status_code == 400
    assert db_snapshot(db) == before


def test_link_refuses_a_product_the_model_cannot_order(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """product=AA on a PODS-only button → 400 and nothing linked."""
    body = _start(client, o.button)
    login_as(client, o.shopper_account_id)
    before = db_snapshot(db)
    assert _approve(client, str(body["user_code"]), product="AA").status_code == 400
    assert db_snapshot(db) == before


def test_five_wrong_codes_a_minute_then_429(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Wrong user codes: five get 400, then 429 (even for a right code) for this shopper."""
    body = _start(client, o.button)
    login_as(client, o.shopper_account_id)
    token = csrf_token(client.get("/link").text)
    for _ in range(5):
        wrong = client.post("/link", data={"user_code": "BCDF-GHJK", "csrf_token": token})
        assert wrong.status_code == 400 and "doesn" in wrong.text
    blocked = client.post("/link", data={"user_code": body["user_code"], "csrf_token": token})
    assert blocked.status_code == 429 and "Too many" in blocked.text
    assert blocked.headers.get("Retry-After")


def test_right_codes_do_not_count_against_the_wrong_code_limit(
    client: FlaskClient, o: OAuthWorld
) -> None:
    """Looking up a real code six times is fine: only wrong codes are counted."""
    body = _start(client, o.button)
    login_as(client, o.shopper_account_id)
    token = csrf_token(client.get("/link").text)
    for _ in range(7):
        page = client.post("/link", data={"user_code": body["user_code"], "csrf_token": token})
        assert page.status_code == 200


def test_unlinking_revokes_the_device_tokens_at_once(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """unlink_device → access token fails verify_access_token, refresh → invalid_grant."""
    body = _start(client, o.button)
    login_as(client, o.shopper_account_id)
    _approve(client, str(body["user_code"]), product="PODS")
    issued = _poll(client, o.button, body["device_code"]).get_json()
    principal = verify_access_token(db, issued["access_token"])
    with db.write() as session:
        link = session.get(DeviceLink, principal.link_id)
        assert link is not None
        assert unlink_device(session, link) == 1
    with pytest.raises(InvalidToken):
        verify_access_token(db, issued["access_token"])
    refresh = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
        "client_id": o.button,
    })  # fmt: skip
    assert refresh.get_json()["error"] == "invalid_grant"


def test_device_refresh_keeps_the_link_binding(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """A device's rotated token is still bound to its link and device."""
    body = _start(client, o.button)
    login_as(client, o.shopper_account_id)
    _approve(client, str(body["user_code"]), product="PODS")
    issued = _poll(client, o.button, body["device_code"]).get_json()
    old = verify_access_token(db, issued["access_token"])
    fresh = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
        "client_id": o.button,
    })  # fmt: skip
    assert fresh.status_code == 200, fresh.text
    new = verify_access_token(db, fresh.get_json()["access_token"])
    assert (new.kind, new.link_id, new.device_id) == ("device", old.link_id, old.device_id)


def test_a_merchant_only_account_cannot_link_a_device(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Staff without a shopper get no approve button; a forced approve is 400, nothing changes."""
    body = _start(client, o.button)
    login_as(client, o.merchant_account_id)
    page = client.post(
        "/link",
        data={"user_code": body["user_code"], "csrf_token": csrf_token(client.get("/link").text)},
    )
    assert page.status_code == 200 and 'value="approve"' not in page.text
    before = db_snapshot(db)
    forced = client.post("/link", data={
        "user_code": body["user_code"], "decision": "approve", "product": "PODS",
        "csrf_token": csrf_token(page.text),
    })  # fmt: skip
    assert forced.status_code == 400
    assert db_snapshot(db) == before
