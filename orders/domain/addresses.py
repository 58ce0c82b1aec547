"""Delivery addresses: the rules of one, and the snapshot an order ships to. Pure."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from orders.domain.errors import InvalidRequest

# ISO 3166-1 alpha-2, the officially assigned codes (exceptional reservations such as UK
# and EU are not countries an address can name).
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()
)

# field -> (longest, required)
LIMITS: dict[str, tuple[int, bool]] = {
    "name": (200, True),
    "line1": (200, True),
    "line2": (200, False),
    "postcode": (20, False),  # some countries (Hong Kong, most of Ireland…) have none
    "city": (100, True),
    "region": (100, False),
    "country": (2, True),
    "phone": (32, False),
}
_PHONE_CHARACTERS = frozenset("0123456789+-() ./")


@dataclass(frozen=True)
class ShipTo:
    """Where an order ships: a copy of an address, never a reference to it."""

    name: str
    line1: str
    city: str
    country: str
    line2: str | None = None
    postcode: str | None = None
    region: str | None = None
    phone: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The API and export shape."""
        # Flat fields of strings: a plain walk, not asdict's deep copy (one per placed order).
        return {name: getattr(self, name) for name in _FIELDS}

    def order_columns(self) -> dict[str, Any]:
        """The `orders.ship_*` columns."""
        pairs = zip(_FIELDS, SHIP_COLUMNS, strict=True)
        return {column: getattr(self, name) for name, column in pairs}


# What erasure leaves on a past order: that it shipped somewhere, not where or to whom.
ERASED = ShipTo(name="erased", line1="", city="", country="")

_FIELDS = tuple(field.name for field in fields(ShipTo))
SHIP_COLUMNS = tuple(f"ship_{name}" for name in _FIELDS)


def ship_to_of(row: Any) -> ShipTo | None:
    """The snapshot in a row's (or an order's) `ship_*` attributes; None for an order
    placed before orders had addresses."""
    values = {name: getattr(row, f"ship_{name}") for name in ShipTo.__dataclass_fields__}
    return ShipTo(**values) if values["name"] is not None else None


def address_problems(fields: dict[str, str | None]) -> dict[str, str]:
    """What is wrong with an address as entered, field by field (empty: nothing)."""
    problems: dict[str, str] = {}
    for name, (longest, required) in LIMITS.items():
        value = (fields.get(name) or "").strip()
        if required and not value:
            problems[name] = "This field is required."
        elif len(value) > longest:
            problems[name] = f"At most {longest} characters."
        elif any(not ch.isprintable() for ch in value):
            problems[name] = "Only printable characters, please."
    country = (fields.get("country") or "").strip().upper()
    if "country" not in problems and country not in COUNTRIES:
        problems["country"] = "Use an ISO 3166-1 two-letter country code, e.g. DE or US."
    phone = (fields.get("phone") or "").strip()
    if "phone" not in problems and phone:
        digits = sum(ch.isdigit() for ch in phone)
        if not set(phone) <= _PHONE_CHARACTERS or digits < 5:
            problems["phone"] = "A phone number: digits, spaces and + - ( ) only."
    return problems


def check_address(fields: dict[str, str | None]) -> ShipTo:
    """The address as it will be kept (trimmed, country upper-case), or `bad_address`."""
    problems = address_problems(fields)
    if problems:
        name, message = next(iter(problems.items()))
        raise InvalidRequest("bad_address", f"{name}: {message}")
    clean = {name: (fields.get(name) or "").strip() for name in LIMITS}
    return ShipTo(
        name=clean["name"],
        line1=clean["line1"],
        city=clean["city"],
        country=clean["country"].upper(),
        line2=clean["line2"] or None,
        postcode=clean["postcode"] or None,
        region=clean["region"] or None,
        phone=clean["phone"] or None,
    )
