"""Voice PIN lockouts escalate (1 h, then 24 h), a guesser gets about three tries a day, and
the shopper sees the lock on the web."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import update

from orders.services.consent import check_voice_pin, set_voice_pin
from orders.store.db import Database, utcnow
from orders.store.model import Shopper
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.voice_fixtures import build_voice_world

PIN = "4821"
WRONG = ("0000", "0001", "0002")


def _miss_three_times(db: Database, shopper_id: int, at: datetime) -> datetime | None:
    """Say three wrong PINs at `at`; return when the lock they cause ends."""
    results = [check_voice_pin(db, shopper_id, pin, now=at) for pin in WRONG]
    assert [r.result for r in results[:2]] == ["wrong", "wrong"]
    assert results[2].result == "locked"
    return results[2].locked_until


def test_the_second_lockout_lasts_a_day(db: Database) -> None:
    """Three misses lock for an hour; three more after it lock for 24 hours, right PIN or not."""
    world = build_voice_world(db, pin=PIN)
    now = utcnow()
    first = _miss_three_times(db, world.shopper_id, now)
    assert first == now + timedelta(hours=1)
    second = _miss_three_times(db, world.shopper_id, first)
    assert second == first + timedelta(hours=24)
    almost = second - timedelta(minutes=1)
    assert check_voice_pin(db, world.shopper_id, PIN, now=almost).result == "locked"
    assert check_voice_pin(db, world.shopper_id, PIN, now=second).result == "ok"


def test_a_guesser_gets_three_misses_a_day_not_seventy_two(db: Database) -> None:
    """Guessing whenever not locked for three days: six misses on day one, three a day after."""
    world = build_voice_world(db, pin=PIN)
    start = moment = utcnow()
    misses: list[datetime] = []
    guess = 0
    while moment < start + timedelta(days=3):
        check = check_voice_pin(db, world.shopper_id, f"{guess:04d}", now=moment)
        guess += 1
        if check.result == "locked":
            if check.locked_until is None or check.locked_until <= moment:
                raise AssertionError("a lock must end in the future")
            misses.append(moment)
            moment = check.locked_until
        else:
            assert check.result == "wrong"
            misses.append(moment)
            moment += timedelta(seconds=1)
    per_day = [sum(start + timedelta(days=d) <= m < start + timedelta(days=d + 1) for m in misses)
               for d in range(3)]  # fmt: skip
    assert per_day == [6, 3, 3]


def test_a_right_pin_ends_the_escalation(db: Database) -> None:
    """After a lockout, a right PIN starts over: the next three misses lock for an hour again."""
    world = build_voice_world(db, pin=PIN)
    now = utcnow()
    first = _miss_three_times(db, world.shopper_id, now)
    assert first is not None
    assert check_voice_pin(db, world.shopper_id, PIN, now=first).result == "ok"
    assert _miss_three_times(db, world.shopper_id, first) == first + timedelta(hours=1)


def test_a_quiet_day_after_a_lock_forgives_it(db: Database) -> None:
    """A day without tries after a lock ended resets it: the next lock is an hour again."""
    world = build_voice_world(db, pin=PIN)
    now = utcnow()
    first = _miss_three_times(db, world.shopper_id, now)
    assert first is not None
    later = first + timedelta(hours=24)
    assert _miss_three_times(db, world.shopper_id, later) == later + timedelta(hours=1)


def test_the_voice_page_tells_the_shopper_about_a_lock_and_a_new_pin_lifts_it(
    app: Flask, db: Database
) -> None:
    """/my/voice says voice purchases are locked and until when; saving a new PIN unlocks."""
    t = build_tenants(db)
    shopper_id = t.ours.shopper_id
    set_voice_pin(db, shopper_id, PIN)
    client = signed_in(app, t.shopper_email)
    assert 'id="voice-locked"' not in client.get("/my/voice").text
    until = _miss_three_times(db, shopper_id, utcnow())
    assert until is not None
    page = client.get("/my/voice").text
    assert 'id="voice-locked"' in page and "wrong voice PINs" in page
    assert until.astimezone(UTC).strftime("%H:%M UTC") in page and "<time datetime=" in page
    form_post(client, "/my/voice", {"form": "pin", "pin": "1357"})
    assert 'id="voice-locked"' not in client.get("/my/voice").text
    assert check_voice_pin(db, shopper_id, "1357").result == "ok"


def test_an_ended_lock_is_not_shown(app: Flask, db: Database) -> None:
    """Once the lock's time has passed the page no longer mentions it."""
    t = build_tenants(db)
    with db.write() as session:
        session.execute(
            update(Shopper)
            .where(Shopper.id == t.ours.shopper_id)
            .values(voice_locked_until=utcnow() - timedelta(minutes=1))
        )
    assert 'id="voice-locked"' not in signed_in(app, t.shopper_email).get("/my/voice").text
