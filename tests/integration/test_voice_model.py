"""The committed skill package: valid, complete for the contract, and what the generator makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orders.queries.search import catalog
from orders.store.db import Database
from restock.seed import seed_demo
from voice_skill.interaction_model import (
    MANIFEST_PATH,
    MODEL_PATH,
    PACKAGE_DIR,
    PLACEHOLDER_ENDPOINT,
    PRODUCT_TYPE,
    write_skill_package,
)

# CONTRACT.md, Alexa section: every intent and its slots with their types.
CONTRACT_INTENTS: dict[str, dict[str, str]] = {
    "ReorderIntent": {"product": PRODUCT_TYPE},
    "BuyIntent": {"quantity": "AMAZON.NUMBER", "product": PRODUCT_TYPE},
    "OrderStatusIntent": {},
    "CancelOrderIntent": {},
    "SupplyLevelIntent": {"product": PRODUCT_TYPE},
    "VoicePinIntent": {"pin": "AMAZON.FOUR_DIGIT_NUMBER"},
    "AMAZON.YesIntent": {},
    "AMAZON.NoIntent": {},
    "AMAZON.HelpIntent": {},
    "AMAZON.CancelIntent": {},
    "AMAZON.StopIntent": {},
    "AMAZON.FallbackIntent": {},
}


def _committed(path: Path) -> Any:
    return json.loads((PACKAGE_DIR / path).read_text(encoding="utf-8"))


def test_the_committed_model_names_every_contract_intent_and_slot() -> None:
    """en-US.json is valid JSON with each contract intent and exactly its slots."""
    model = _committed(MODEL_PATH)["interactionModel"]["languageModel"]
    intents = {intent["name"]: intent for intent in model["intents"]}
    for name, slots in CONTRACT_INTENTS.items():
        assert name in intents, name
        declared = {slot["name"]: slot["type"] for slot in intents[name].get("slots", [])}
        assert declared == slots, name
    for name, slots in CONTRACT_INTENTS.items():
        for sample in intents[name]["samples"]:
            # Every {slot} a sample uses must be a declared slot, or the model won't build.
            used = {part.split("}")[0] for part in sample.split("{")[1:]}
            assert used <= set(slots), (name, sample)
    assert model["invocationName"] == model["invocationName"].lower()


def test_the_product_type_lists_each_demo_product_with_its_sku_as_id() -> None:
    """Entity resolution hands our SKUs back as slot ids."""
    model = _committed(MODEL_PATH)["interactionModel"]["languageModel"]
    (product_type,) = [t for t in model["types"] if t["name"] == PRODUCT_TYPE]
    ids = {value["id"] for value in product_type["values"]}
    assert ids == {
        "COF-PODS-50", "BAT-AA-8", "DET-LIQ-2L", "INK-BLK", "MILK-1L",
        "INK-CYN", "INK-MAG", "INK-YEL", "DESC-KIT",
    }  # fmt: skip
    pods = next(v for v in product_type["values"] if v["id"] == "COF-PODS-50")
    assert pods["name"] == {"value": "coffee pods", "synonyms": ["coffee", "pods"]}


def test_the_committed_manifest_points_alexa_at_an_https_endpoint() -> None:
    """skill.json declares the custom API with an HTTPS endpoint."""
    manifest = _committed(MANIFEST_PATH)["manifest"]
    endpoint = manifest["apis"]["custom"]["endpoint"]["uri"]
    assert endpoint.startswith("https://") and endpoint.endswith("/alexa")
    assert "en-US" in manifest["publishingInformation"]["locales"]


def test_the_generator_reproduces_the_committed_package_from_the_demo_catalog(
    db: Database, tmp_path: Path
) -> None:
    """Seed the demo store, generate: both files are byte-identical to the committed ones."""
    store_id = seed_demo(db).store_id
    written = write_skill_package(tmp_path, catalog(db, store_id), endpoint=PLACEHOLDER_ENDPOINT)
    assert sorted(p.relative_to(tmp_path) for p in written) == sorted([MANIFEST_PATH, MODEL_PATH])
    for path in (MANIFEST_PATH, MODEL_PATH):
        assert (tmp_path / path).read_bytes() == (PACKAGE_DIR / path).read_bytes(), path
