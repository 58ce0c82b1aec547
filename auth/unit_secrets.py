"""Per-unit secrets: proof that whoever starts linking a device holds the device itself.

A maker that can provision each unit with its own random secret gives the merchant a list
of serial,secret pairs; a model with `requires_unit_secret` then links only a device that
sends its serial's secret (`unit_secret`) with the device authorization request. Secrets
are random (at least 16 characters), so a SHA-256 hash is enough to store them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth.model import DeviceUnitSecret
from auth.tokens import token_hash
from orders.domain.errors import InvalidRequest, NotFound
from orders.store.db import Database
from orders.store.model import DeviceModel

MIN_SECRET = 16
MAX_SECRET = 200
MAX_IMPORT = 10_000
# Compared against when a serial has no secret, so both refusals cost the same.
_NO_SECRET = token_hash("")


def check_unit_secret(
    session: Session, model_id: int, serial: str | None, presented: str | None
) -> bool:
    """True when `presented` is the secret provisioned for this model's `serial`."""
    if serial is None or not presented or len(presented) > MAX_SECRET:
        return False
    stored = session.scalar(
        select(DeviceUnitSecret.secret_hash).where(
            DeviceUnitSecret.model_id == model_id, DeviceUnitSecret.serial == serial
        )
    )
    matches = hmac.compare_digest(token_hash(presented), stored or _NO_SECRET)
    return stored is not None and matches


def parse_unit_secrets(text: str) -> list[tuple[str, str]]:
    """`serial,secret` lines (blank lines and `#` comments skipped) as pairs; InvalidRequest."""
    pairs: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        serial, comma, secret = (part.strip() for part in line.partition(","))
        if not comma or not serial or len(serial) > 128 or not serial.isprintable():
            raise InvalidRequest("bad_unit_secrets", f"line {number}: write serial,secret")
        if not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isprintable():
            raise InvalidRequest(
                "bad_unit_secrets",
                f"line {number}: a secret needs {MIN_SECRET}-{MAX_SECRET} printable characters",
            )
        pairs[serial] = secret
    if len(pairs) > MAX_IMPORT:
        raise InvalidRequest("bad_unit_secrets", f"import at most {MAX_IMPORT} units at once")
    return list(pairs.items())


@dataclass(frozen=True)
class Possession:
    """A model's proof-of-possession setting, as the merchant's model page shows it."""

    required: bool
    units_on_file: int


def set_unit_secrets(
    db: Database,
    store_id: int,
    model_id: int,
    pairs: Iterable[tuple[str, str]] = (),
    *,
    required: bool | None = None,
) -> Possession:
    """Store (or replace) secrets of a store's model's units, hashed, and maybe turn the
    requirement on or off; one transaction."""
    wanted = dict(pairs)

    def work(session: Session) -> Possession:
        model = session.get(DeviceModel, model_id)
        if model is None or model.store_id != store_id:
            raise NotFound("not_found", "no such device model")
        existing = {
            row.serial: row
            for row in session.scalars(
                select(DeviceUnitSecret).where(
                    DeviceUnitSecret.model_id == model_id,
                    DeviceUnitSecret.serial.in_(list(wanted)),
                )
            )
        }
        for serial, secret in wanted.items():
            row = existing.get(serial)
            if row is None:
                row = DeviceUnitSecret(model_id=model_id, serial=serial, secret_hash="")
                session.add(row)
            row.secret_hash = token_hash(secret)
        if required is not None:
            model.requires_unit_secret = required
        session.flush()
        return Possession(model.requires_unit_secret, _count(session, model_id))

    return db.run_write(work)


def possession(db: Database, store_id: int, model_id: int) -> Possession:
    """Whether a store's model requires unit secrets, and how many units have one."""
    with db.read() as session:
        model = session.get(DeviceModel, model_id)
        if model is None or model.store_id != store_id:
            raise NotFound("not_found", "no such device model")
        return Possession(model.requires_unit_secret, _count(session, model_id))


def _count(session: Session, model_id: int) -> int:
    query = (
        select(func.count())
        .select_from(DeviceUnitSecret)
        .where(DeviceUnitSecret.model_id == model_id)
    )
    return int(session.scalar(query) or 0)
