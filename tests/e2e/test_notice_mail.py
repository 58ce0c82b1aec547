"""Notice e-mail over a real SMTP server on loopback: what arrives, the signed link in it
working after sign-in, and a server that is down retried later."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from auth.mail import Mailer
from dashboard.notice_links import NoticeLinks
from orders.services.notice_delivery import send_due
from orders.store.db import Database, utcnow
from orders.store.model import Notification, Order
from restock.server import start_notice_sender
from restock.settings import Settings
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.e2e.conftest import free_port
from tests.factories import publish_outbox
from tests.smtp_inbox import Inbox


def _links(app: Flask) -> NoticeLinks:
    return NoticeLinks(app.config["SECRET_KEY"], "http://restock.test")


def test_an_order_notice_arrives_by_e_mail_and_its_link_cancels(
    app: Flask, db: Database, inbox: tuple[Inbox, int]
) -> None:
    """The shopper's e-mail names the order and its cancel time; its link, opened after
    signing in, cancels the order with one click; the notice is not sent twice."""
    received, port = inbox
    t = build_tenants(db)
    publish_outbox(db)
    mailer = Mailer(f"smtp://127.0.0.1:{port}", "shop@restock.test")
    assert send_due(db, mailer, _links(app)) == 2
    assert send_due(db, mailer, _links(app)) == 0
    mine = next(m for m in received.messages if m["To"] == t.shopper_email)
    assert mine["From"] == "shop@restock.test"
    assert mine["Subject"] == "Order placed: 1 × Coffee pods"
    body = mine.get_content()
    assert "You can cancel it until" in body
    match = re.search(r"http://restock\.test(/my/notifications/act/\S+)", body)
    assert match is not None
    client = signed_in(app, t.shopper_email)
    assert "Cancel the order" in client.get(match.group(1)).text
    assert form_post(client, match.group(1)).status_code == 302
    with db.read() as session:
        assert session.get(Order, t.order_id).status == "cancelled"  # type: ignore[union-attr]
        statuses = set(session.scalars(select(Notification.email_status)))
    assert statuses == {"sent"}


def test_a_server_that_is_down_is_tried_again_later(app: Flask, db: Database) -> None:
    """Nothing listens: the notice stays pending, due again after a pause, attempt counted."""
    port = free_port()  # closed again: nothing listens there
    build_tenants(db)
    publish_outbox(db)
    before = utcnow()
    sent = send_due(db, Mailer(f"smtp://127.0.0.1:{port}"), _links(app))
    assert sent == 2
    with db.read() as session:
        rows = list(session.scalars(select(Notification)))
    assert {(n.email_status, n.send_attempts) for n in rows} == {("pending", 1)}
    assert all(n.next_send_at and n.next_send_at >= before + timedelta(seconds=50) for n in rows)


def test_the_worker_role_e_mails_notices_when_smtp_is_set(
    db: Database, inbox: tuple[Inbox, int], tmp_path: Path
) -> None:
    """The worker's notice sender, as `serve` starts it, delivers a queued notice; without
    RESTOCK_SMTP_URL it does not start at all."""
    received, port = inbox
    assert start_notice_sender(Settings(var_dir=tmp_path), db) is None
    build_tenants(db)
    publish_outbox(db)
    settings = Settings(
        var_dir=tmp_path, smtp_url=f"smtp://127.0.0.1:{port}", mail_from="shop@restock.test"
    )
    started = start_notice_sender(settings, db)
    assert started is not None
    sender, thread = started
    try:
        assert received.arrived.wait(30)
    finally:
        sender.stop()
        thread.join(30)
    assert received.messages[0]["Subject"] == "Order placed: 1 × Coffee pods"
