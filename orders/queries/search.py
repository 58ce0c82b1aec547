"""Finding a product from spoken words: exact names and aliases first, then fuzzy matching."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, utils
from sqlalchemy import Connection, bindparam, select

from orders.store.db import Database
from orders.store.model import Product

# WRatio scores a one-word query inside a longer name at 90 ("pods" in "coffee pods") and
# unrelated words well below 70 ("tea" against the demo catalog); 75 sits between the two.
MIN_SCORE = 75.0
# Products scoring this close to the best are too close to call: the shopper is asked.
AMBIGUITY_MARGIN = 5.0
MAX_CHOICES = 3

_PARENTHESES = re.compile(r"\([^)]*\)")
# Sizes read badly aloud ("two l") and nobody says them when asking for the product.
_SIZE = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:l|ml|cl|g|kg)\b", re.IGNORECASE)
_SPACES = re.compile(r"\s+")

MatchStatus = Literal["found", "ambiguous", "unknown"]


@dataclass(frozen=True)
class ProductChoice:
    """A product as the shopper may name it."""

    sku: str
    name: str
    price_minor: int
    currency: str
    aliases: tuple[str, ...] = ()

    @property
    def spoken_name(self) -> str:
        """The name as people say it (see spoken())."""
        return spoken(self.name)

    def terms(self) -> tuple[str, ...]:
        """Every phrase that names this product, normalised, without repeats."""
        seen: dict[str, None] = {}
        for phrase in (self.spoken_name, *self.aliases):
            term = normalise(phrase)
            if term:
                seen.setdefault(term, None)
        return tuple(seen)


@dataclass(frozen=True)
class ProductMatch:
    """The outcome of a search: one product, a few to choose from, or none."""

    status: MatchStatus
    choices: tuple[ProductChoice, ...] = ()

    @property
    def product(self) -> ProductChoice:
        """The product found (only when status is `found`)."""
        if self.status != "found":
            raise ValueError(f"no single product: {self.status}")
        return self.choices[0]


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces (rapidfuzz's default processor)."""
    return str(utils.default_process(text))


def spoken(name: str) -> str:
    """A catalog name as spoken: no notes in parentheses, no sizes, lower case."""
    plain = _SPACES.sub(" ", _SIZE.sub(" ", _PARENTHESES.sub(" ", name))).strip().lower()
    return plain or _SPACES.sub(" ", name).strip().lower()


def match_products(
    products: Sequence[ProductChoice], query: str, *, sku_hints: Iterable[str] = ()
) -> ProductMatch:
    """Match a spoken query against products' names and aliases (pure, no I/O)."""
    by_sku = {p.sku: p for p in products}
    # Alexa's entity resolution already matched the words to our slot ids (SKUs): trust it.
    hinted = [by_sku[sku] for sku in dict.fromkeys(sku_hints) if sku in by_sku]
    if len(hinted) == 1:
        return ProductMatch("found", (hinted[0],))
    if len(hinted) > 1:
        return ProductMatch("ambiguous", tuple(hinted[:MAX_CHOICES]))
    wanted = normalise(query or "")
    if not wanted:
        return ProductMatch("unknown")
    exact = [p for p in products if wanted in p.terms()]
    if exact:
        status: MatchStatus = "found" if len(exact) == 1 else "ambiguous"
        return ProductMatch(status, tuple(exact[:MAX_CHOICES]))
    scored = sorted(
        ((max(_score(wanted, term) for term in p.terms()), p) for p in products if p.terms()),
        key=lambda pair: -pair[0],
    )
    if not scored or scored[0][0] < MIN_SCORE:
        return ProductMatch("unknown")
    best = scored[0][0]
    close = tuple(p for score, p in scored if score >= max(MIN_SCORE, best - AMBIGUITY_MARGIN))
    if len(close) == 1:
        return ProductMatch("found", close)
    return ProductMatch("ambiguous", close[:MAX_CHOICES])


def _score(query: str, term: str) -> float:
    # Both sides are already normalised, so no processor runs per comparison.
    return float(fuzz.WRatio(query, term))


def catalog(db: Database, store_id: int) -> list[ProductChoice]:
    """The store's active products, in catalog order."""
    return db.lookup(lambda conn: catalog_on(conn, store_id))


_CATALOG = (
    select(Product.sku, Product.name, Product.price_minor, Product.currency, Product.aliases)
    .where(Product.store_id == bindparam("store_id"), Product.active.is_(True))
    .order_by(Product.id)
)


def catalog_on(conn: Connection, store_id: int) -> list[ProductChoice]:
    """catalog() on the caller's connection."""
    rows = conn.execute(_CATALOG, {"store_id": store_id})
    return [
        ProductChoice(row.sku, row.name, row.price_minor, row.currency, tuple(row.aliases or ()))
        for row in rows
    ]


def choice_of(product: Product) -> ProductChoice:
    """A ProductChoice snapshot of a catalog row."""
    return ProductChoice(
        sku=product.sku,
        name=product.name,
        price_minor=product.price_minor,
        currency=product.currency,
        aliases=tuple(product.aliases or ()),
    )


def find_product(
    db: Database, store_id: int, query: str, *, sku_hints: Iterable[str] = ()
) -> ProductMatch:
    """Find the product a shopper named in a store's catalog."""
    return match_products(catalog(db, store_id), query, sku_hints=sku_hints)
