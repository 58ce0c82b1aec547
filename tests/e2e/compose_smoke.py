"""The compose smoke `.ci/run` runs against `docker compose up` (where Docker can run).

python -m tests.e2e.compose_smoke --seed-json JSON --web URL --web URL --coap HOST:PORT
Probes both webs and the hub port, then links a simulated button through the web and
presses it; exit 0 when the press placed its order.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from restock.healthcheck import check_coap, check_http
from tests.e2e.topology import link_and_press

SERIAL = "SIM-COMPOSE"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the smoke; print what the simulated device saw."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.compose_smoke")
    parser.add_argument("--seed-json", required=True, help="what `seed --demo --json` printed")
    parser.add_argument("--web", action="append", required=True, help="a web container's URL")
    parser.add_argument("--coap", required=True, help="the hubs' published HOST:PORT")
    args = parser.parse_args(argv)
    demo = json.loads(args.seed_json)
    for url in args.web:
        check_http(f"{url}/healthz")
    host, _, port = args.coap.rpartition(":")
    check_coap(host, int(port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
    env["RESTOCK_MDNS"] = "off"
    printed = link_and_press(
        f"coap://{args.coap}", demo["clients"]["button"], SERIAL, env, args.web[-1],
        (demo["shopper"]["email"], demo["shopper"]["password"]),
    )  # fmt: skip
    print(printed, end="")
    return 0 if "press 1: 2.01 placed" in printed else 1


if __name__ == "__main__":
    raise SystemExit(main())
