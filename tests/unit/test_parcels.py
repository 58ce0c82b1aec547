"""Late and lost parcels: when a shipped order stops blocking its link, and what is offered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orders.domain.parcels import (
    ParcelFacts,
    ReplacementFacts,
    lead_time_quantile,
    parcel_state,
    replacement,
)

EXPECTED = datetime(2026, 5, 4, tzinfo=UTC)
# Twenty deliveries: most in two or three days, one held up for nine.
HISTORY = [2.0] * 10 + [3.0] * 9 + [9.0]


def facts(days_after: float, **kw: object) -> ParcelFacts:
    """A parcel expected at EXPECTED, judged `days_after` days later, with HISTORY."""
    base: dict[str, object] = {
        "expected_at": EXPECTED,
        "now": EXPECTED + timedelta(days=days_after),
        "observed_lead_days": HISTORY,
        "promised_lead_days": 2.0,
    }
    base.update(kw)
    return ParcelFacts(**base)  # type: ignore[arg-type]


def test_the_lost_point_is_the_stores_observed_p95_past_the_expected_day() -> None:
    """Nearest-rank p95 of twenty deliveries is the 19th: three days, not the nine-day outlier."""
    assert lead_time_quantile(HISTORY, 0.95, 2.0) == 3.0
    assert parcel_state(facts(-0.5)).state == "on_time"
    assert parcel_state(facts(1.0)).state == "late"
    verdict = parcel_state(facts(3.5))
    assert verdict.state == "lost" and verdict.by == "store"
    assert verdict.lost_after == EXPECTED + timedelta(days=3)


def test_a_store_with_little_history_waits_its_promise_past_the_day() -> None:
    """Under five deliveries say little about the tail: the promise stands in for the p95."""
    few = facts(2.5, observed_lead_days=[1.0, 1.0], promised_lead_days=4.0)
    assert parcel_state(few).state == "late"
    assert parcel_state(facts(4.5, observed_lead_days=[], promised_lead_days=4.0)).state == "lost"


def test_the_carriers_word_makes_a_parcel_lost_at_once() -> None:
    """A carrier saying lost or returned ends the journey even before the expected day."""
    for word in ("lost", "returned"):
        verdict = parcel_state(facts(-1.0, carrier_status=word))
        assert verdict.state == "lost" and verdict.by == "carrier"
    assert parcel_state(facts(-1.0, carrier_status="in_transit")).state == "on_time"


def test_a_carrier_moving_the_day_later_moves_the_point_of_loss() -> None:
    """Judged at the same moment, a later estimated day turns lost back into late."""
    now = EXPECTED + timedelta(days=4)
    assert parcel_state(facts(4.0)).state == "lost"
    later = facts(0.0, expected_at=EXPECTED + timedelta(days=2), now=now)
    assert parcel_state(later).state == "late"


def test_a_late_parcel_is_offered_again_and_replaced_only_with_the_opt_in() -> None:
    """Without the opt-in the shopper is offered a reorder; with it, one replacement is made."""

    def ask(**kw: object) -> str:
        base: dict[str, object] = {"state": "late", "opted_in": False, "already_replaced": False,
                                   "late_days": 4.0, "late_reorder_days": 3.0}  # fmt: skip
        base.update(kw)
        return replacement(ReplacementFacts(**base))  # type: ignore[arg-type]

    assert ask() == "offer"
    assert ask(opted_in=True) == "automatic"
    assert ask(opted_in=True, late_days=2.0) == "offer"  # not late enough for the link yet
    assert ask(opted_in=True, state="lost", late_days=0.0) == "automatic"
    assert ask(opted_in=True, already_replaced=True) == "none"  # one replacement per order
    assert ask(state="on_time") == "none"
