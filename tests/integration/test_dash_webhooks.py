"""The merchant's webhook pages: add an endpoint, see its deliveries, redeliver, delete."""

from __future__ import annotations

from typing import Any

from orders.services.webhook_dispatch import Dispatcher
from orders.services.webhooks import list_endpoints
from orders.store.db import Database
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.factories import db_snapshot
from tests.webhook_receiver import webhook_receiver


def test_a_merchant_adds_an_endpoint_sees_its_log_and_deletes_it(
    app_factory: Any, db: Database
) -> None:
    """The secret shows once; a test event appears in the log; delete asks first."""
    app = app_factory(db, webhook_allow_private=True)
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}/webhooks"
    with webhook_receiver() as receiver:
        page = form_post(client, base, {"url": receiver.url, "events": ["order.placed"]})
        assert page.status_code == 200 and "whsec_" in page.text
        (endpoint,) = list_endpoints(db, t.ours.store_id)
        assert endpoint.events == ("order.placed",)
        receiver.secret = page.text.split('id="webhook-secret">')[1].split("<")[0]
        assert form_post(client, f"{base}/{endpoint.id}/test").status_code == 302
        dispatcher = Dispatcher(db, allow_private=True)
        while dispatcher.run_once():
            pass
        assert receiver.types() == ["webhook.test"]
    detail = client.get(f"{base}/{endpoint.id}").text
    assert "webhook.test" in detail and "delivered" in detail and "Redeliver" in detail
    assert "whsec_" not in client.get(base).text
    confirm = client.get(f"{base}/{endpoint.id}/delete")
    assert confirm.status_code == 200 and "Delete this webhook endpoint?" in confirm.text
    assert list_endpoints(db, t.ours.store_id)  # asking deleted nothing
    assert form_post(client, f"{base}/{endpoint.id}/delete").status_code == 302
    assert list_endpoints(db, t.ours.store_id) == []


def test_another_merchant_and_a_private_url_are_refused(app_factory: Any, db: Database) -> None:
    """Another store's endpoint is a 404; a loopback URL is refused (400), nothing written."""
    app = app_factory(db)
    t = build_tenants(db)
    ours = signed_in(app, t.merchant_email)
    before = db_snapshot(db)
    refused = form_post(ours, f"/stores/{t.ours.store_id}/webhooks", {"url": "http://127.0.0.1/"})
    assert refused.status_code == 400
    assert db_snapshot(db) == before
    form_post(ours, f"/stores/{t.ours.store_id}/webhooks", {"url": "https://example.com/h"})
    (endpoint,) = list_endpoints(db, t.ours.store_id)
    theirs = signed_in(app, t.other_merchant_email)
    assert theirs.get(f"/stores/{t.theirs.store_id}/webhooks/{endpoint.id}").status_code == 404
