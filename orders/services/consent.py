"""Voice purchase consent: when a voice PIN is needed, checking it, and locking after misses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.decision import Consent, VoiceSettings, consent_needed
from orders.domain.errors import InvalidRequest, NotFound
from orders.services.notifications import raise_notice
from orders.store.db import Database, utcnow
from orders.store.model import Shopper

MAX_PIN_FAILURES = 3
# The first lock is short for a shopper who misspoke; every later one, until a right PIN or
# a quiet day, lasts a day, so a guesser gets three tries a day instead of three an hour.
FIRST_LOCK = timedelta(hours=1)
REPEAT_LOCK = timedelta(hours=24)
FORGIVEN_AFTER = timedelta(hours=24)
_PIN = re.compile(r"^[0-9]{4}$")
MAX_PIN_THRESHOLD_MINOR = 10_000_000
# A four-digit PIN has only 10 000 values, so the hash cannot stop an offline search; the
# lockout is the real protection. argon2 still keeps the PIN out of plain sight in backups.
# OWASP's minimum argon2id settings (19 MiB, 2 passes) rather than argon2-cffi's 64 MiB: the
# check runs inside a spoken request, and a burst of PIN attempts must not eat the memory.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

__all__ = ["Consent", "VoiceSettings", "consent_needed"]  # decided in orders.domain.decision

PinResult = Literal["ok", "wrong", "locked", "not_set"]


@dataclass(frozen=True)
class PinCheck:
    """The outcome of one spoken PIN, and how many tries remain before the lock."""

    result: PinResult
    attempts_left: int
    locked_until: datetime | None = None


def _shopper(session: Session, shopper_id: int, *, lock: bool = False) -> Shopper:
    query = select(Shopper).where(Shopper.id == shopper_id, Shopper.deleted_at.is_(None))
    shopper = session.scalar(query.with_for_update() if lock else query)
    if shopper is None:
        raise NotFound("not_found", "no such shopper")
    return shopper


def set_voice_pin(db: Database, shopper_id: int, pin: str | None) -> None:
    """Set (or with None, remove) the shopper's voice PIN; resets failures and any lock."""
    if pin is not None and not _PIN.match(pin):
        raise InvalidRequest("bad_pin", "a voice PIN is exactly 4 digits")
    pin_hash = _hasher.hash(pin) if pin is not None else None

    def work(session: Session) -> None:
        shopper = _shopper(session, shopper_id, lock=True)
        shopper.voice_pin_hash = pin_hash
        shopper.voice_pin_failures = 0
        shopper.voice_locked_until = None

    db.run_write(work)


def clear_voice_pin(db: Database, shopper_id: int) -> None:
    """Remove the voice PIN: voice purchases then need only the spoken confirmation."""
    set_voice_pin(db, shopper_id, None)


def set_pin_threshold(db: Database, shopper_id: int, threshold_minor: int | None) -> None:
    """Without a PIN, voice purchases above this total are refused (None: no limit)."""
    if threshold_minor is not None and not 0 <= threshold_minor <= MAX_PIN_THRESHOLD_MINOR:
        raise InvalidRequest("bad_threshold", "the threshold must be 0 or more")

    def work(session: Session) -> None:
        _shopper(session, shopper_id, lock=True).voice_pin_threshold_minor = threshold_minor

    db.run_write(work)


def set_voice_approval(db: Database, shopper_id: int, on: bool) -> None:
    """On: every voice purchase waits for the shopper's approval on the web."""

    def work(session: Session) -> None:
        _shopper(session, shopper_id, lock=True).voice_approval = on

    db.run_write(work)


def lock_duration(failures: int) -> timedelta | None:
    """How long voice purchases lock after `failures` misses in a row (None: no lock yet)."""
    if failures == 0 or failures % MAX_PIN_FAILURES:
        return None
    return FIRST_LOCK if failures == MAX_PIN_FAILURES else REPEAT_LOCK


def check_voice_pin(
    db: Database, shopper_id: int, pin: str, *, now: datetime | None = None
) -> PinCheck:
    """Check a spoken PIN; every third miss in a row locks voice purchases (1 h, then 24 h)."""
    moment = now or utcnow()

    def work(session: Session) -> PinCheck:
        # The row lock makes concurrent guesses count one after another, so two requests
        # racing can never both see "two misses so far" and get a fourth try.
        shopper = _shopper(session, shopper_id, lock=True)
        locked_until = shopper.voice_locked_until
        if locked_until is not None:
            if moment < locked_until:
                return PinCheck("locked", 0, locked_until)
            # An expired lock stays on the row: it is what makes the next one a day long.
            if moment >= locked_until + FORGIVEN_AFTER:
                shopper.voice_locked_until = None
                shopper.voice_pin_failures = 0
        if shopper.voice_pin_hash is None:
            return PinCheck("not_set", 0)
        if pin_matches(shopper.voice_pin_hash, pin):
            shopper.voice_pin_failures = 0
            shopper.voice_locked_until = None
            return PinCheck("ok", MAX_PIN_FAILURES)
        shopper.voice_pin_failures += 1
        duration = lock_duration(shopper.voice_pin_failures)
        if duration is not None:
            shopper.voice_locked_until = moment + duration
            until = shopper.voice_locked_until.isoformat().replace("+00:00", "Z")
            raise_notice(session, shopper.id, "voice_locked", {"until": until}, moment)
            return PinCheck("locked", 0, shopper.voice_locked_until)
        return PinCheck("wrong", MAX_PIN_FAILURES - shopper.voice_pin_failures % MAX_PIN_FAILURES)

    return db.run_write(work)


def pin_matches(pin_hash: str | None, pin: str) -> bool:
    """True when `pin` is the PIN behind `pin_hash`."""
    if pin_hash is None:
        return False
    if not isinstance(pin, str) or not _PIN.match(pin):
        return False
    try:
        return bool(_hasher.verify(pin_hash, pin))
    except (VerificationError, InvalidHashError):
        return False
