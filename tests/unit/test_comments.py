"""Comments say why; measurements live in commit messages or bench/README.md (#15, item 5)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("auth", "dashboard", "device_hub", "orders", "restock", "voice_skill")
# A measured figure: microseconds, a before -> after, a gain in % or x, "measured".
# (A configured duration such as "10 s in 10 ms steps" is a design fact, not narration.)
MEASUREMENT = re.compile(
    r"\d\s*µs|\d\s*(ms|µs)?\s*->\s*\d|\bmeasured\b|\bbenchmark(ed)?\b"
    r"|\d+(\.\d+)?\s*(%|x|times)\s+(faster|slower|more|less|cheaper)"
)


def test_no_comment_outside_bench_narrates_a_measurement() -> None:
    """A comment naming a timing or a measured figure belongs in bench/README.md instead."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type == tokenize.COMMENT and MEASUREMENT.search(token.string):
                    found.append(f"{path.relative_to(ROOT)}:{token.start[0]} {token.string}")
    assert found == [], "move these figures to bench/README.md:\n" + "\n".join(found)
