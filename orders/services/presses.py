"""Device presses, a batch at a time: read in bulk, decide each press, write in bulk.

A press is the hottest write in Restock, and the hub group-commits them. The whole path,
top to bottom (`run_presses`, one write transaction, two round trips on PostgreSQL):

1. One flight of reads (`_Batch.read`): the caller's own reads (the hub: the devices'
   tokens), the devices' active links with everything a decision needs (locking their
   shoppers), and the presses already seen and the open orders of those links.
2. `admit`: the caller turns its rows into a PressRequest, or the error that answers
   each incoming item (the hub: token verdicts and per-device rate limits).
3. Each press in batch order (`_Batch.decide`): one already seen under its link answers
   `duplicate`; any other is decided by `orders.domain.decision.decide`, the same function as
   every other channel's orders, on the facts as the batch's earlier presses left them.
4. One flight of writes and the COMMIT (`Database.run_decided`); on PostgreSQL a batch
   that places orders writes them all in one statement (`_placing`).

A refused press writes nothing, so after it the database is exactly as before that press.
What the database can still refuse after the decisions is a unique key (another process
recorded the same press or opened an order for the same link) or the stock CHECK
(another process took the last units since we read the stock). Either rolls the whole
batch back and it runs again: the retry sees the other process's committed rows, and
reads stock under a row lock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import CompoundSelect, Select

from orders.domain import ops, rules
from orders.domain.addresses import ShipTo
from orders.domain.decision import (
    Ask,
    Facts,
    InProgress,
    LinkFacts,
    Place,
    Refusal,
    ShopperFacts,
    StockedLine,
    StoreFacts,
    decide,
)
from orders.domain.errors import DomainError, InvalidRequest, OrderRefused
from orders.domain.rules import PricedLine
from orders.queries.snapshots import OrderView, Outcome, PlaceResult
from orders.services import placing
from orders.store.db import Database, utcnow
from orders.store.flights import Read as Read  # a statement and its parameters: Candidates.reads
from orders.store.flights import (
    Write,
    insert_rows,
    read_rows,
    unnest_insert,
    unnest_params,
)
from orders.store.model import (
    OPEN_STATUSES,
    Address,
    Device,
    DeviceLink,
    DeviceModel,
    Order,
    OrderEvent,
    OrderLine,
    Press,
    Product,
    Shopper,
    Store,
    sql_in,
)
from orders.store.outbox import NOTIFY, event_writes, notify_params
from orders.store.sql import in_list, in_select

_ATTEMPTS = 3
E = TypeVar("E", bound=Exception)


_CONSENTED = aliased(Product)


# Statements built once per source of device ids (see DeviceIds; there are two): building
# SQL expressions per batch cost more than running them. Bounded, should a caller build
# its source per call against the advice.
@lru_cache(maxsize=16)
def _facts(devices: Select[Any]) -> Select[*tuple[Any, ...]]:
    return (
        select(
            DeviceLink.device_id,
            DeviceLink.id,
            DeviceLink.shopper_id,
            DeviceLink.store_id,
            DeviceLink.product_id,
            DeviceLink.quantity,
            DeviceLink.paused,
            DeviceLink.approval_required,
            DeviceLink.per_order_cap_minor,
            DeviceLink.monthly_cap_minor,
            DeviceLink.paused_until,
            DeviceModel.kind,
            Product.sku,
            Product.name,
            Product.price_minor,
            Product.active,
            Product.stock,
            Store.currency,
            Store.cancel_window_minutes,
            Store.review_orders_over_minor,
            Shopper.monthly_cap_minor.label("shopper_cap_minor"),
            Shopper.deleted_at,
            or_(Device.test_mode, DeviceModel.test_mode).label("test"),
            DeviceLink.consented_product_id,
            _CONSENTED.sku.label("consented_sku"),
            DeviceLink.consented_price_minor,
            DeviceLink.price_tolerance_minor,
            *(c.label(f"ship_{c.key}") for c in placing.ADDRESS_COLUMNS),
        )
        .join(Device, Device.id == DeviceLink.device_id)
        .join(DeviceModel, DeviceModel.id == Device.model_id)
        .join(Store, Store.id == DeviceLink.store_id)
        .join(Shopper, Shopper.id == DeviceLink.shopper_id)
        .outerjoin(Product, Product.id == DeviceLink.product_id)
        .outerjoin(_CONSENTED, _CONSENTED.id == DeviceLink.consented_product_id)
        # Where the link's orders ship: its own address, else the shopper's default (at
        # most one row either way: ids are unique, and so is a shopper's default).
        .outerjoin(
            Address,
            and_(
                Address.shopper_id == DeviceLink.shopper_id,
                or_(
                    Address.id == DeviceLink.address_id,
                    and_(DeviceLink.address_id.is_(None), Address.is_default.is_(True)),
                ),
            ),
        )
        .where(in_select(DeviceLink.device_id, devices), DeviceLink.status == "active")
        # Every order of one shopper passes this lock, so caps and the in-progress guard are
        # decided one at a time; taken in shopper order, so two batches never wait on each
        # other in a circle (SQLite: BEGIN IMMEDIATE already serialises writers).
        .order_by(DeviceLink.shopper_id)
        .with_for_update(of=Shopper)
    )


# The statuses inline, as the partial unique index on open orders names them (so that
# index serves), and as fixed text (a pipelined read needs one text for every execution).
_OPEN = text(sql_in("orders.status", OPEN_STATUSES))
_ACTIVE = text("device_links.status = 'active'")
# The presses already seen and the open orders of the batch's devices' active links, each
# with its order and lines (the answer to a repeated or an in_progress press), in one
# statement. Per link, never per device: a device linked anew never answers with its
# previous owner's orders. Seen presses are a superset (any of the boots and seqs asked
# about, in any combination) matched exactly in Python: portable, and the unique (device,
# link, boot, seq) index serves the lookup. The boots matter: a device counts its presses
# afresh at each boot (CONTRACT), so without them every earlier boot's press of the same
# seq came back too, with its order.
_ORDER_AND_LINES = (*placing.VIEW_COLUMNS, OrderLine.id.label("line_id"))
_HELD_LINE = aliased(OrderLine, name="held_line")


@lru_cache(maxsize=16)
def _seen_and_open(devices: Select[Any]) -> CompoundSelect[Any]:
    return union_all(
        select(
            literal_column("'seen'").label("kind"),
            Press.link_id.label("of_link"),
            Press.boot.label("of_boot"),
            Press.seq.label("number"),
            *_ORDER_AND_LINES,
        )
        .join(Order, Order.id == Press.order_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(
            in_select(Press.device_id, devices),
            Press.link_id == _active_link_of(Press.device_id),
            in_list(Press.boot, "boots"),
            in_list(Press.seq, "seqs"),
        ),
        select(
            literal_column("'open'").label("kind"),
            Order.link_id.label("of_link"),
            literal_column("''").label("of_boot"),
            Order.device_product_id.label("number"),
            *_ORDER_AND_LINES,
        )
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(
            in_select(Order.device_id, devices),
            Order.link_id == _active_link_of(Order.device_id),
            _OPEN,
        ),
        # The household guard: open orders, from any channel, of the links' shoppers with a
        # line of the link's product; `of_link` names the shopper here.
        select(
            literal_column("'held'").label("kind"),
            Order.shopper_id.label("of_link"),
            literal_column("''").label("of_boot"),
            _HELD_LINE.product_id.label("number"),
            *_ORDER_AND_LINES,
        )
        .select_from(DeviceLink)
        .join(Order, Order.shopper_id == DeviceLink.shopper_id)
        .join(
            _HELD_LINE,
            and_(_HELD_LINE.order_id == Order.id, _HELD_LINE.product_id == DeviceLink.product_id),
        )
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(in_select(DeviceLink.device_id, devices), _ACTIVE, _OPEN, Order.test.is_(False)),
    )


def _active_link_of(device_id: Any) -> Any:
    """The active link of the row's device: one lookup in the partial unique index on them
    per row (the device ids' own subquery is not run again for it)."""
    return select(DeviceLink.id).where(DeviceLink.device_id == device_id, _ACTIVE).scalar_subquery()


# The device ids of presses given by id (press_batch): a lookup by primary key.
_GIVEN_DEVICES = select(Device.id).where(in_list(Device.id, "given"))


# After a stock race, the retry reads stock under the row lock, so it cannot race again.
_LOCK_STOCK = (
    select(Product.id, Product.stock).where(in_list(Product.id, "products")).with_for_update()
)
# By device too: a link's orders are its device's, and orders are indexed by (device_id,
# created_at), not by link (see placing._SPENT_BY_LINK).
_SPENT_BY_LINK = (
    select(Order.link_id, Order.currency, func.coalesce(func.sum(Order.total_minor), 0))
    .where(
        in_list(Order.device_id, "devices"),
        in_list(Order.link_id, "whose"),
        Order.created_at >= bindparam("since"),
        Order.status != "cancelled",
        Order.test.is_(False),  # a test order spends nothing
    )
    .group_by(Order.link_id, Order.currency)
)
_SPENT_BY_SHOPPER = (
    select(Order.shopper_id, Order.currency, func.coalesce(func.sum(Order.total_minor), 0))
    .where(
        in_list(Order.shopper_id, "whose"),
        Order.created_at >= bindparam("since"),
        Order.status != "cancelled",
        Order.test.is_(False),
    )
    .group_by(Order.shopper_id, Order.currency)
)
_SEEN_AT = (
    update(Device).where(in_list(Device.id, "devices")).values(last_seen_at=bindparam("seen"))
)
# Unconditional: the stock CHECK (never below zero) refuses a batch that would oversell,
# and PostgreSQL re-reads the row under its lock, so a concurrent buyer is counted. Being
# a plain write, it goes in the batch's one flight instead of waiting for a row count.
_SPEND_STOCK = (
    update(Product)
    .where(Product.id == bindparam("p_id"))
    .values(stock=Product.stock - bindparam("qty"))
)

# PostgreSQL: a batch that places orders writes everything in one statement, each table's
# rows a data-modifying CTE, with the outbox's NOTIFY as the main query: a statement's
# fixed cost is paid once, not six times (bench/README.md).
# The CTEs all see the statement's snapshot and none reads another's rows;
# foreign keys are checked when the statement ends, so lines may name orders inserted
# beside them. A unique key or the stock CHECK still fails the whole statement, and the
# batch runs again (run_presses). Rows are written in no set order, product rows
# included: two hubs' batches that lock the same products in a different order deadlock,
# which PostgreSQL detects and the batch retries (Database._retrying).
_TAKEN = select(
    func.unnest(bindparam("taken_ids", type_=ARRAY(Integer))).label("id"),
    func.unnest(bindparam("taken_units", type_=ARRAY(Integer))).label("units"),
).subquery("taken")
_SPEND_STOCK_ALL = (
    update(Product).where(Product.id == _TAKEN.c.id).values(stock=Product.stock - _TAKEN.c.units)
)


@lru_cache(maxsize=16)
def _placing(
    orders: tuple[str, ...],
    lines: tuple[str, ...],
    events: tuple[str, ...],
    presses: tuple[str, ...],
) -> Select[Any]:
    """The one statement of a placing batch whose rows name these columns."""
    return NOTIFY.add_cte(
        _SEEN_AT.cte("sighted"),
        unnest_insert(Order.__table__, orders, "order_").cte("placed"),
        unnest_insert(OrderLine.__table__, lines, "line_").cte("lined"),
        unnest_insert(OrderEvent.__table__, events, "event_").cte("evented"),
        unnest_insert(Press.__table__, presses, "press_").cte("pressed"),
        _SPEND_STOCK_ALL.cte("spent"),
    )


@dataclass(frozen=True)
class PressRequest:
    """One press: the device, its press counter, and the boot it counts in."""

    device_id: int
    seq: int
    boot: str = ""


@dataclass(frozen=True)
class DeviceIds:
    """A one-column SELECT of the device ids a batch is about, with its parameters.

    Whoever identifies the devices says where their ids come from (the hub: the rows of
    their tokens), so the batch reads its facts in the same round trip as the reads that
    identify them. Build `select` once (a module constant): the batch's statements are
    built from it once and kept.
    """

    select: Select[Any]
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Candidates:
    """What a batch reads before it knows which presses it admits (see run_presses)."""

    reads: Sequence[Read]  # the admitter's own reads, e.g. the devices' tokens
    devices: DeviceIds  # every device those reads may admit (a superset is fine)
    seqs: Sequence[int]  # every press counter asked about
    boots: Sequence[str]  # every boot those counters count in


def check_press(seq: object, boot: object) -> None:
    """Refuse a malformed seq or boot before any work is done."""
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise InvalidRequest("bad_seq", "seq must be a non-negative integer")
    if not isinstance(boot, str) or len(boot) > 64:
        raise InvalidRequest("bad_boot", "boot must be a string of at most 64 characters")


def press(
    db: Database, device_id: int, seq: int, *, boot: str = "", now: datetime | None = None
) -> PlaceResult:
    """A device's press: at most one order per (device, boot, seq)."""
    check_press(seq, boot)
    result = press_batch(db, [PressRequest(device_id, seq, boot)], now=now)[0]
    count_presses([result])
    if isinstance(result, DomainError):
        raise result
    return result


def count_presses(
    answers: Sequence[object], result_of: Callable[[object], str] = lambda _answer: "error"
) -> Counter[str]:
    """Count committed presses by result, orders by channel, refusals by reason.

    `result_of` names the caller's own answers (the hub's rate limits, bad tokens).
    """
    results: Counter[str] = Counter()
    placed: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    for answer in answers:
        if isinstance(answer, PlaceResult):
            results[answer.outcome] += 1
            # A test order is in no figure: it never ships and spends nothing.
            if answer.outcome in ("placed", "needs_approval") and not answer.order.test:
                placed[answer.order.channel] += 1
        elif isinstance(answer, OrderRefused):
            results["refused"] += 1
            refusals[answer.reason] += 1
        elif isinstance(answer, InvalidRequest):
            results["invalid"] += 1
        else:
            results[result_of(answer)] += 1
    for name, counts in ((ops.PRESSES, results), (ops.ORDERS_PLACED, placed)):
        for label, amount in counts.items():
            ops.count(name, label, amount=amount)
    for reason, amount in refusals.items():
        ops.count(ops.REFUSALS, reason, amount=amount)
    return results


def press_batch(
    db: Database, presses: Sequence[PressRequest], *, now: datetime | None = None
) -> list[PlaceResult | DomainError]:
    """Handle many presses in one transaction; each answer is a result or a domain error."""
    admitted: list[PressRequest | DomainError] = list(presses)
    given = Candidates(
        reads=(),
        devices=DeviceIds(_GIVEN_DEVICES, {"given": sorted({p.device_id for p in presses})}),
        seqs=sorted({p.seq for p in presses}),
        boots=sorted({p.boot for p in presses}),
    )
    return run_presses(db, given, lambda _rows: admitted, now=now)


def run_presses(
    db: Database,
    candidates: Candidates,
    admit: Callable[[Sequence[list[Any]]], Sequence[PressRequest | E]],
    *,
    now: datetime | None = None,
) -> list[PlaceResult | DomainError | E]:
    """Admit presses inside one write transaction, then handle them all in it.

    The batch's first flight carries `candidates.reads` and the batch's own reads (the
    candidate devices' links, presses seen and open orders, locking their shoppers);
    `admit` then turns the rows of `candidates.reads` into a PressRequest or the error
    that answers each incoming item (the hub checks the devices' tokens there, in the
    same transaction as the presses they authorise). It runs again if the batch is
    retried. Then every write and the COMMIT: two round trips on PostgreSQL in all.
    """
    now = now or utcnow()
    for attempt in range(_ATTEMPTS):
        try:
            return db.run_decided(partial(_run_batch, candidates, admit, now, attempt > 0))
        except IntegrityError:
            # Another process won a race on a unique key or the last units; the retry,
            # a new transaction, sees its committed rows.
            continue
    raise IntegrityError("press", {}, Exception("a press race did not settle"))


def _run_batch(
    candidates: Candidates,
    admit: Callable[[Sequence[list[Any]]], Sequence[PressRequest | E]],
    now: datetime,
    lock_stock: bool,
    conn: Connection,
) -> tuple[list[PlaceResult | DomainError | E], list[Write]]:
    batch, items = _Batch.read(conn, candidates, admit, now, lock_stock=lock_stock)
    decided = [batch.decide(item) if isinstance(item, PressRequest) else item for item in items]
    answers: list[PlaceResult | DomainError | E] = [
        PlaceResult(answer[0], batch.views[answer[1]]) if isinstance(answer, tuple) else answer
        for answer in decided
    ]
    return answers, batch.writes(conn.dialect.name)


@dataclass(frozen=True)
class _Link:
    """A device's active link as the batch read it: what its presses are decided on."""

    link: LinkFacts
    shopper: ShopperFacts
    store: StoreFacts
    channel: str  # the device model's kind: button or appliance
    priced: PricedLine | None  # the link's product and quantity (None: it names none)
    product_active: bool
    ship_to: ShipTo | None  # the link's address, else the shopper's default

    @classmethod
    def of(
        cls, row: Any, shoppers: dict[int, ShopperFacts], stores: dict[int, StoreFacts]
    ) -> _Link:
        """From one `_facts` row, in its column order; a batch's devices share their
        shoppers' and stores' facts."""
        (device_id, link_id, shopper_id, store_id, product_id, quantity, paused, approval,
         per_order_cap, monthly_cap, paused_until, kind, sku, name, price, active, _stock,
         currency, cancel_window, review_over, shopper_cap, deleted_at, test,
         consented_product_id, consented_sku, consented_price, tolerance,
         *address) = row  # fmt: skip
        shopper = shoppers.get(shopper_id)
        if shopper is None:
            shopper = shoppers[shopper_id] = ShopperFacts(
                shopper_id, shopper_cap, None, None, None, deleted_at is not None
            )
        store = stores.get(store_id)
        if store is None:
            store = stores[store_id] = StoreFacts(
                store_id, "", currency, cancel_window, 0.0, review_over
            )
        link = LinkFacts(
            link_id, shopper_id, store_id, paused, approval, per_order_cap, monthly_cap, device_id,
            paused_until=paused_until,
            test=bool(test),
            consented_product_id=consented_product_id,
            consented_sku=consented_sku,
            consented_price_minor=consented_price,
            price_tolerance_minor=tolerance or 0,
        )  # fmt: skip
        priced = None
        if product_id is not None:
            priced = PricedLine(product_id, sku or "", name or "", quantity, price or 0)
        channel = "appliance" if kind == "appliance" else "button"
        ship_to = ShipTo(*address) if address[0] is not None else None
        return cls(link, shopper, store, channel, priced, bool(active), ship_to)


@dataclass
class _Batch:
    """What a batch read, how its presses changed it so far, and the rows they will write."""

    now: datetime
    links: dict[int, _Link]  # device -> its active link
    seen: dict[tuple[int | None, str, int], str]  # (link, boot, seq) -> order id
    open: dict[tuple[int | None, int | None], str]  # (link, product) -> open order id
    stock: dict[int, int]  # product -> units left
    spent_link: dict[tuple[int, str], int]  # (link, currency) -> this month's spending
    spent_shopper: dict[tuple[int, str], int]
    views: dict[str, OrderView]  # every order a press may answer with: seen, open, placed
    taken: dict[int, int] = field(default_factory=dict)  # product -> units this batch takes
    # (shopper, product) -> the shopper's oldest open order of it (the household guard)
    held: dict[tuple[int, int], str] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    presses: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(
        cls,
        conn: Connection,
        candidates: Candidates,
        admit: Callable[[Sequence[list[Any]]], Sequence[PressRequest | E]],
        now: datetime,
        *,
        lock_stock: bool,
    ) -> tuple[_Batch, Sequence[PressRequest | E]]:
        """Everything the batch decides on, and what it admits: one flight for the
        admitter's reads and the batch's (the facts read locks shoppers), then the
        spending of capped links and shoppers if any."""
        batch = cls(now, {}, {}, {}, {}, {}, {}, {})
        devices = candidates.devices
        own = len(candidates.reads)
        # One flight: the seen/open read runs after the locking read on the server, so it
        # sees what committed while the locks were awaited.
        rows = read_rows(
            conn,
            [
                *candidates.reads,
                (_facts(devices.select), devices.params),
                (
                    _seen_and_open(devices.select),
                    {**devices.params, "seqs": candidates.seqs, "boots": candidates.boots},
                ),
            ],
        )
        items = admit(rows[:own])
        facts_rows, seen_rows = rows[own:]
        shoppers: dict[int, ShopperFacts] = {}
        stores: dict[int, StoreFacts] = {}
        for row in facts_rows:
            batch.links[row.device_id] = known = _Link.of(row, shoppers, stores)
            if known.priced is not None:
                batch.stock[known.priced.product_id] = row.stock or 0
        lines: dict[str, dict[int, Any]] = {}  # order id -> its line rows, by line id
        oldest: dict[tuple[int, int], tuple[datetime, str]] = {}
        for row in seen_rows:
            if row.kind == "seen":
                batch.seen[(row.of_link, row.of_boot, row.number)] = row.id
            elif row.kind == "held":  # `of_link` is the shopper, `number` the product
                key = (row.of_link, row.number)
                oldest[key] = min(
                    oldest.get(key, (row.created_at, row.id)), (row.created_at, row.id)
                )
            else:  # open: `number` is the order's product
                batch.open[(row.of_link, row.number)] = row.id
            # An order comes once per press that answered with it, once more if open, and
            # again per link of its shopper with one of its products.
            lines.setdefault(row.id, {})[row.line_id] = row
        batch.held = {key: order_id for key, (_at, order_id) in oldest.items()}
        for order_id, by_line in lines.items():
            batch.views[order_id] = placing.view_of_rows([by_line[n] for n in sorted(by_line)])
        if lock_stock and batch.stock:
            for product_id, stock in conn.execute(_LOCK_STOCK, {"products": sorted(batch.stock)}):
                batch.stock[product_id] = stock
        batch._read_spending(conn)
        return batch, items

    def _read_spending(self, conn: Connection) -> None:
        """This month's spending of the links and shoppers that have a monthly cap."""
        since = rules.month_start(self.now)
        capped = {
            device: known.link.id
            for device, known in self.links.items()
            if known.link.monthly_cap_minor is not None
        }
        links = sorted(set(capped.values()))
        shoppers = sorted(
            {k.shopper.id for k in self.links.values() if k.shopper.monthly_cap_minor is not None}
        )
        if links:
            for link_id, currency, spent in conn.execute(
                _SPENT_BY_LINK, {"devices": sorted(capped), "whose": links, "since": since}
            ):
                if link_id is not None:  # as above: the IN clause guarantees it
                    self.spent_link[(link_id, currency)] = int(spent)
        if shoppers:
            for shopper_id, currency, spent in conn.execute(
                _SPENT_BY_SHOPPER, {"whose": shoppers, "since": since}
            ):
                if shopper_id is not None:
                    self.spent_shopper[(shopper_id, currency)] = int(spent)

    def decide(self, item: PressRequest) -> tuple[Outcome, str] | DomainError:
        """One press, in batch order: its outcome and order id, or why not.

        A press already seen under the device's link answers as it did; any other is
        decided by `decision.decide` on what the batch read and its earlier presses did.
        """
        known = self.links.get(item.device_id)
        if known is None:  # no active link: the decision refuses
            decision = decide(Ask("button", device_id=item.device_id), None, self.now)
        else:
            link_id = known.link.id
            seen = self.seen.get((link_id, item.boot, item.seq))
            if seen is not None:
                return "duplicate", seen
            ask = Ask(known.channel, f"press:{link_id}:{item.boot}:{item.seq}", item.device_id)
            decision = decide(ask, self._facts(known), self.now)
            if isinstance(decision, InProgress):
                self._record_press(item, link_id, "in_progress", decision.order_id)
                return "in_progress", decision.order_id
            if isinstance(decision, Place):
                self._place(item, decision)
                return decision.outcome, decision.order.id
        assert isinstance(decision, Refusal)  # a press asks for no voice consent
        return decision.error()

    def _facts(self, known: _Link) -> Facts:
        """The facts of one press: what was read, as this batch's earlier presses left it."""
        lines: tuple[StockedLine, ...] = ()
        product_id = None
        if known.priced is not None:
            product_id = known.priced.product_id
            stock = self.stock.get(product_id, 0)
            lines = (StockedLine(known.priced, stock, known.product_active),)
        currency = known.store.currency
        return Facts(
            shopper=known.shopper,
            store=known.store,
            lines=lines,
            link=known.link,
            open_order=self.open.get((known.link.id, product_id)),
            spent_link=self.spent_link.get((known.link.id, currency), 0),
            spent_shopper=self.spent_shopper.get((known.shopper.id, currency), 0),
            ship_to=known.ship_to,
            household_open=(
                self.held.get((known.shopper.id, product_id)) if product_id is not None else None
            ),
        )

    def _place(self, item: PressRequest, decision: Place) -> None:
        """Keep the decided order's rows for the batch's write, and count what it took."""
        new = decision.order
        self.orders.append(new.order_row())
        self.lines.extend(new.line_rows())
        self.events.append(new.event_row())
        assert new.link_id is not None and new.device_product_id is not None
        self._record_press(item, new.link_id, decision.outcome, new.id)
        self.open[(new.link_id, new.device_product_id)] = new.id
        self.views[new.id] = placing.view_of_new(new)
        if new.held_product_id is not None:
            self.held.setdefault((new.shopper_id, new.held_product_id), new.id)
        if new.test:  # takes no stock and spends nothing
            return
        for line in new.lines:
            self.stock[line.product_id] -= line.quantity
            self.taken[line.product_id] = self.taken.get(line.product_id, 0) + line.quantity
        spent_key = (new.link_id, new.currency)
        self.spent_link[spent_key] = self.spent_link.get(spent_key, 0) + new.total_minor
        shopper_key = (new.shopper_id, new.currency)
        self.spent_shopper[shopper_key] = self.spent_shopper.get(shopper_key, 0) + new.total_minor

    def _sighted(self) -> dict[str, Any]:
        """The parameters of `_SEEN_AT`: the devices that placed orders, seen now."""
        return {"devices": sorted({order["device_id"] for order in self.orders}), "seen": self.now}

    def _placing_write(self) -> Write:
        rows = (self.orders, self.lines, self.events, self.presses)
        statement = _placing(*(tuple(table_rows[0]) for table_rows in rows))
        taken = sorted(self.taken)
        params = {
            **self._sighted(),
            **unnest_params(self.orders, "order_"),
            **unnest_params(self.lines, "line_"),
            **unnest_params(self.events, "event_"),
            **unnest_params(self.presses, "press_"),
            "taken_ids": taken,
            "taken_units": [self.taken[p] for p in taken],
            **notify_params(self.events),
        }
        return statement, params

    def _record_press(self, item: PressRequest, link_id: int, result: str, order_id: str) -> None:
        self.seen[(link_id, item.boot, item.seq)] = order_id
        self.presses.append(
            dict(
                device_id=item.device_id,
                link_id=link_id,
                boot=item.boot,
                seq=item.seq,
                result=result,
                order_id=order_id,
                created_at=self.now,
            )
        )

    def writes(self, dialect: str) -> list[Write]:
        """Everything the batch decided: on PostgreSQL one statement when it places orders
        (see _placing), else a few executemany statements, stock last."""
        if dialect == "postgresql" and self.orders:
            return [self._placing_write()]
        writes: list[Write] = []
        if self.orders:
            writes.append(insert_rows(dialect, Order.__table__, self.orders))
            writes.append(insert_rows(dialect, OrderLine.__table__, self.lines))
            writes += event_writes(dialect, self.events)
            writes.append((_SEEN_AT, self._sighted()))
        if self.presses:
            writes.append(insert_rows(dialect, Press.__table__, self.presses))
        if self.taken:
            # Last, so the hot product rows stay locked (PostgreSQL) only until the commit;
            # in product order, so two batches never wait on each other in a circle.
            taken = [{"p_id": p, "qty": self.taken[p]} for p in sorted(self.taken)]
            writes.append((_SPEND_STOCK, taken))
        return writes
