"""The skill package (ASK CLI layout): skill.json and the en-US interaction model from a catalog."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orders.queries.search import ProductChoice, normalise

PACKAGE_DIR = Path(__file__).resolve().parent / "skill-package"
MODEL_PATH = Path("interactionModels") / "custom" / "en-US.json"
MANIFEST_PATH = Path("skill.json")
# Alexa only calls HTTPS endpoints; a local (http) public URL gets this placeholder instead.
PLACEHOLDER_ENDPOINT = "https://restock.example.com/alexa"
INVOCATION_NAME = "restock shop"
PRODUCT_TYPE = "RestockProduct"

# Contract intents (CONTRACT.md, Alexa section): name -> {slot: type}, and what people say.
CUSTOM_INTENTS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "BuyIntent": (
        {"quantity": "AMAZON.NUMBER", "product": PRODUCT_TYPE},
        (
            "buy {product}",
            "buy {quantity} {product}",
            "buy {quantity} packs of {product}",
            "order {product}",
            "order {quantity} {product}",
            "order {quantity} packs of {product}",
            "get me {product}",
            "get me {quantity} {product}",
            "I want {product}",
            "I want {quantity} {product}",
            "add {product}",
            "{product}",
            "{quantity} {product}",
        ),
    ),
    "ReorderIntent": (
        {"product": PRODUCT_TYPE},
        (
            "reorder",
            "reorder {product}",
            "order {product} again",
            "buy {product} again",
            "order again",
            "repeat my last order",
            "same again",
        ),
    ),
    "OrderStatusIntent": (
        {},
        (
            "where is my order",
            "where are my orders",
            "order status",
            "track my order",
            "when will my order arrive",
            "what is the status of my order",
        ),
    ),
    "CancelOrderIntent": (
        {},
        ("cancel my order", "cancel my last order", "cancel the order", "stop my order"),
    ),
    "SupplyLevelIntent": (
        {"product": PRODUCT_TYPE},
        (
            "how much {product} is left",
            "how much {product} do I have",
            "how many {product} are left",
            "how many {product} do I have left",
            "what is my {product} level",
            "check my supplies",
            "how are my supplies",
        ),
    ),
    "VoicePinIntent": (
        {"pin": "AMAZON.FOUR_DIGIT_NUMBER"},
        ("{pin}", "my pin is {pin}", "pin {pin}", "the pin is {pin}"),
    ),
}
BUILT_IN_INTENTS = (
    "AMAZON.YesIntent",
    "AMAZON.NoIntent",
    "AMAZON.HelpIntent",
    "AMAZON.CancelIntent",
    "AMAZON.StopIntent",
    "AMAZON.FallbackIntent",
    "AMAZON.NavigateHomeIntent",
)


def product_values(products: Sequence[ProductChoice]) -> list[dict[str, Any]]:
    """Slot values for the product type: id = SKU, value = spoken name, synonyms = aliases."""
    values = []
    for product in products:
        value = product.spoken_name
        synonyms = [term for term in product.terms() if term != normalise(value)]
        entry: dict[str, Any] = {"id": product.sku, "name": {"value": value}}
        if synonyms:
            entry["name"]["synonyms"] = synonyms
        values.append(entry)
    return values


def interaction_model(products: Sequence[ProductChoice]) -> dict[str, Any]:
    """The en-US interaction model for a catalog."""
    intents: list[dict[str, Any]] = []
    for name, (slots, samples) in CUSTOM_INTENTS.items():
        intent: dict[str, Any] = {"name": name, "samples": list(samples)}
        if slots:
            intent["slots"] = [{"name": slot, "type": kind} for slot, kind in slots.items()]
        intents.append(intent)
    intents.extend({"name": name, "samples": []} for name in BUILT_IN_INTENTS)
    return {
        "interactionModel": {
            "languageModel": {
                "invocationName": INVOCATION_NAME,
                "intents": intents,
                "types": [{"name": PRODUCT_TYPE, "values": product_values(products)}],
            }
        }
    }


def manifest(endpoint: str) -> dict[str, Any]:
    """skill.json: the custom skill at `endpoint` (Alexa needs HTTPS), English (US)."""
    return {
        "manifest": {
            "manifestVersion": "1.0",
            "publishingInformation": {
                "locales": {
                    "en-US": {
                        "name": "Restock",
                        "summary": "Reorder household supplies from your store by voice.",
                        "description": (
                            "Buy and reorder from the store you linked, hear where your orders "
                            "are, cancel a recent order and ask how much of a supply is left. "
                            "Every purchase is read back and needs a yes, and a voice PIN when "
                            "you set one."
                        ),
                        "examplePhrases": [
                            f"Alexa, open {INVOCATION_NAME}",
                            f"Alexa, ask {INVOCATION_NAME} to reorder coffee pods",
                            f"Alexa, ask {INVOCATION_NAME} where is my order",
                        ],
                        "keywords": ["shopping", "reorder", "supplies"],
                    }
                },
                "isAvailableWorldwide": False,
                "distributionCountries": ["US"],
                "testingInstructions": "Link the demo shopper (python -m restock seed --demo).",
                "category": "SHOPPING",
            },
            "apis": {
                "custom": {
                    "endpoint": {"uri": endpoint, "sslCertificateType": "Trusted"},
                    "interfaces": [],
                }
            },
            "privacyAndCompliance": {
                "allowsPurchases": True,
                "usesPersonalInfo": True,
                "isChildDirected": False,
                "isExportCompliant": True,
                "containsAds": False,
            },
        }
    }


def endpoint_for(public_url: str) -> str:
    """The /alexa endpoint under a public URL, or the placeholder when it is not HTTPS."""
    if public_url.lower().startswith("https://"):
        return public_url.rstrip("/") + "/alexa"
    return PLACEHOLDER_ENDPOINT


def render(document: dict[str, Any]) -> str:
    """Stable JSON text: the same catalog always gives byte-identical files."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_skill_package(
    out: Path, products: Sequence[ProductChoice], *, endpoint: str = PLACEHOLDER_ENDPOINT
) -> list[Path]:
    """Write skill.json and the en-US model under `out`; returns the paths written."""
    files = {
        out / MANIFEST_PATH: render(manifest(endpoint)),
        out / MODEL_PATH: render(interaction_model(products)),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
