"""SenML (RFC 8428) packs, validated strictly and resolved to plain readings."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orders.domain.errors import InvalidRequest

MAX_RECORDS = 256
# Devices' clocks drift; a reading a little ahead of ours is fine, one from tomorrow is not.
MAX_FUTURE = timedelta(minutes=5)
# RFC 8428 §4.5.3: a resolved time below 2**28 is relative to now, at or above it is absolute.
RELATIVE_LIMIT = 2**28
# RFC 8428 §6: CBOR SenML uses integer labels.
CBOR_LABELS: dict[int, str] = {
    -1: "bver",
    -2: "bn",
    -3: "bt",
    -4: "bu",
    -5: "bv",
    -6: "bs",
    0: "n",
    1: "u",
    2: "v",
    3: "vs",
    4: "vb",
    5: "s",
    6: "t",
    7: "ut",
    8: "vd",
}
_KNOWN = frozenset(CBOR_LABELS.values())
# §4.5.1: the resolved name starts with a letter or digit, then letters, digits and `-:./_`.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-:./_]{0,127}$")


@dataclass(frozen=True)
class Reading:
    """One resolved SenML record: a slot's level (or a condition's value) at a time."""

    slot: str
    value: float
    unit: str | None
    measured_at: datetime
    # Conditions may report `vb` (descale needed) or `vs` (an error code); levels never do.
    flag: bool | None = None
    text: str | None = None

    @property
    def is_number(self) -> bool:
        """True for a plain `v` record (what a slot's level must be)."""
        return self.flag is None and self.text is None


def parse_pack(records: object, *, now: datetime) -> list[Reading]:
    """Resolve a SenML pack (JSON or CBOR labels) into readings, or InvalidRequest."""
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise InvalidRequest("bad_senml", "senml must be an array of records")
    if not records:
        raise InvalidRequest("bad_senml", "senml pack is empty")
    if len(records) > MAX_RECORDS:
        raise InvalidRequest("too_many_records", f"at most {MAX_RECORDS} records per pack")
    base_name, base_time, base_value = "", 0.0, 0.0
    base_unit: str | None = None
    readings: list[Reading] = []
    for index, raw in enumerate(records):
        record = _labels(raw, index)
        bver = record.get("bver", 1)
        if not isinstance(bver, int) or isinstance(bver, bool) or not 1 <= bver <= 10:
            raise InvalidRequest("bad_senml", f"record {index}: bad bver")
        if "bn" in record:
            base_name = _text(record["bn"], index, "bn")
        if "bt" in record:
            base_time = _number(record["bt"], index, "bt")
        if "bu" in record:
            base_unit = _text(record["bu"], index, "bu")
        if "bv" in record:
            base_value = _number(record["bv"], index, "bv")
        for field in ("vd", "s", "bs"):
            if field in record:
                raise InvalidRequest("bad_senml", f"record {index}: {field} is not a level")
        given = [field for field in ("v", "vb", "vs") if field in record]
        if len(given) > 1:
            raise InvalidRequest("bad_senml", f"record {index}: more than one value")
        if not given:
            if "n" in record or "u" in record or "t" in record:
                raise InvalidRequest("bad_senml", f"record {index}: no value")
            continue  # a record of base fields only sets the context for later ones
        name = _text(record.get("n", ""), index, "n")
        resolved = base_name + name
        if not _NAME.match(resolved):
            raise InvalidRequest("bad_name", f"record {index}: {resolved!r} is not a SenML name")
        flag, text = None, None
        if "vb" in record:
            if not isinstance(record["vb"], bool):
                raise InvalidRequest("bad_senml", f"record {index}: vb must be true or false")
            flag = record["vb"]
            value = 1.0 if flag else 0.0
        elif "vs" in record:
            text = _text(record["vs"], index, "vs")
            value = 0.0
        else:
            value = base_value + _number(record["v"], index, "v")
        if not math.isfinite(value):  # two finite halves can still add up to infinity
            raise InvalidRequest("bad_number", f"record {index}: v must be finite")
        if value < 0:
            raise InvalidRequest("negative_level", f"record {index}: a level can't be negative")
        unit = _text(record["u"], index, "u") if "u" in record else base_unit
        when = base_time + (_number(record["t"], index, "t") if "t" in record else 0.0)
        measured = _resolve_time(when, now, index)
        readings.append(Reading(name or base_name, value, unit, measured, flag, text))
    if not readings:
        raise InvalidRequest("bad_senml", "senml pack has no values")
    return readings


def is_senml_name(name: str) -> bool:
    """Whether `name` may be a resolved SenML name (a slot or condition a model declares)."""
    return bool(_NAME.match(name))


def _labels(raw: object, index: int) -> dict[str, object]:
    if not isinstance(raw, Mapping):
        raise InvalidRequest("bad_senml", f"record {index} is not a map")
    record: dict[str, object] = {}
    for key, value in raw.items():
        label = CBOR_LABELS.get(key) if _is_int(key) else key
        if not isinstance(label, str):
            raise InvalidRequest("bad_senml", f"record {index}: unknown label {key!r}")
        if label.endswith("_"):
            # §4.4: labels ending in `_` must be understood; we understand none of them.
            raise InvalidRequest("bad_senml", f"record {index}: must-understand label {label!r}")
        if label in record:
            raise InvalidRequest("bad_senml", f"record {index}: {label} given twice")
        if label in _KNOWN:
            record[label] = value
        # other unknown labels are extensions a receiver may ignore (§4.4)
    return record


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object, index: int, field: str) -> str:
    if not isinstance(value, str) or len(value) > 128:
        raise InvalidRequest("bad_senml", f"record {index}: {field} must be a short string")
    return value


def _number(value: object, index: int, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest("bad_senml", f"record {index}: {field} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        number = math.inf
    if not math.isfinite(number):
        raise InvalidRequest("bad_number", f"record {index}: {field} must be finite")
    return number


def _resolve_time(when: float, now: datetime, index: int) -> datetime:
    try:
        if when < RELATIVE_LIMIT:
            measured = now + timedelta(seconds=when)
        else:
            measured = datetime.fromtimestamp(when, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidRequest("bad_time", f"record {index}: time out of range") from None
    if measured > now + MAX_FUTURE:
        raise InvalidRequest("future_time", f"record {index}: measured in the future")
    return measured
