"""Sending queued notices by e-mail: claimed in one short transaction, sent outside any, then
settled; a failure is retried a few times, then given up (the notice stays in the app)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.notices import NoticeText, retry_after, text_of
from orders.store.db import Database, utcnow
from orders.store.model import Notification, Shopper

log = logging.getLogger("restock.notices")
# A claim lasts longer than one SMTP conversation may; a worker killed mid-send leaves the
# notice to come due again.
LEASE = timedelta(minutes=2)
# A notice queued long ago (e.g. while no SMTP server was set) is stale news: not sent.
STALE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Outgoing:
    """One notice to send: to whom, what it says, and what it is about."""

    notice_id: int
    shopper_id: int
    to: str
    kind: str
    text: NoticeText
    data: dict[str, Any]
    order_id: str | None


class Mail(Protocol):
    """Anything that sends one plain-text message (auth.mail.Mailer)."""

    def send(self, to: str, subject: str, body: str) -> None: ...


# Extra lines for a notice's e-mail (links to act on it), built where URLs are known.
Links = Callable[[Outgoing], list[str]]


def claim_due(session: Session, now: datetime, *, limit: int = 20) -> list[Outgoing]:
    """Take up to `limit` notices due by e-mail and lease them; stale ones are given up."""
    query = (
        select(Notification, Shopper.email)
        .join(Shopper, Shopper.id == Notification.shopper_id)
        .where(Notification.email_status == "pending", Notification.next_send_at <= now)
        .order_by(Notification.next_send_at, Notification.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Notification, skip_locked=True)
    taken = []
    for notice, email in session.execute(query):
        if email is None or notice.created_at < now - STALE_AFTER:
            notice.email_status = "failed"
            continue
        notice.next_send_at = now + LEASE
        notice.send_attempts += 1
        taken.append(
            Outgoing(
                notice.id,
                notice.shopper_id,
                email,
                notice.kind,
                text_of(notice.kind, notice.data or {}),
                dict(notice.data or {}),
                notice.order_id,
            )
        )
    session.flush()
    return taken


def settle(session: Session, notice_id: int, ok: bool, now: datetime) -> None:
    """Record how sending went: sent, due again later, or failed for good."""
    notice = session.get(Notification, notice_id)
    if notice is None or notice.email_status != "pending":
        return
    if ok:
        notice.email_status = "sent"
        notice.next_send_at = None
        return
    wait = retry_after(notice.send_attempts)
    if wait is None:
        notice.email_status = "failed"
        notice.next_send_at = None
    else:
        notice.next_send_at = now + timedelta(minutes=wait)


def send_due(
    db: Database,
    mail: Mail,
    links: Links,
    *,
    clock: Callable[[], datetime] = utcnow,
    limit: int = 20,
) -> int:
    """One pass: claim due notices, e-mail each, settle each; returns how many were claimed."""
    taken = db.run_write(lambda s: claim_due(s, clock(), limit=limit))
    for item in taken:
        body = "\n\n".join([item.text.body, *links(item)])
        try:
            mail.send(item.to, item.text.title, body)
            ok = True
        except Exception:  # any failure of one message must not stop the others
            log.exception("notice %s not e-mailed; will retry", item.notice_id)
            ok = False
        db.run_write(partial(_settle_one, notice_id=item.notice_id, ok=ok, now=clock()))
    return len(taken)


def _settle_one(session: Session, *, notice_id: int, ok: bool, now: datetime) -> None:
    settle(session, notice_id, ok, now)


class NoticeSender:
    """E-mails due notices until stopped (one per worker process, beside the dispatcher)."""

    def __init__(self, db: Database, mail: Mail, links: Links, *, interval: float = 2.0) -> None:
        self.db, self.mail, self.links, self.interval = db, mail, links, interval
        self._stop = threading.Event()

    def run(self) -> None:
        """Send, then wait when there was nothing to send; a database hiccup is retried."""
        while not self._stop.is_set():
            try:
                sent = send_due(self.db, self.mail, self.links)
            except Exception:
                log.exception("sending notices failed; retrying")
                sent = 0
            if not sent:
                self._stop.wait(self.interval)

    def stop(self) -> None:
        """Return from `run` after the message being sent."""
        self._stop.set()
