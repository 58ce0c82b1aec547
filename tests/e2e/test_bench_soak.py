"""The soak benchmark runs end to end, briefly: every role up, no error answers, a plot."""

from __future__ import annotations

from pathlib import Path

from bench import soak


def test_a_short_soak_answers_every_request_and_draws_its_plot(tmp_path: Path) -> None:
    """Six seconds (a day every three), 60 devices on SQLite: presses placed, reports taken,
    webhooks delivered, no error answer, RSS sampled for every process, a PNG written."""
    outcome = soak.main(["--devices", "60", "--minutes", "0.1", "--day-seconds", "3",
                         "--presses-per-day", "2", "--reports-per-day", "6",
                         "--window", "4", "--out", str(tmp_path)])  # fmt: skip
    assert outcome.tally.errors == 0, outcome.tally.answers
    assert outcome.tally.answers["/press 2.01"] > 0
    assert outcome.tally.answers["/telemetry 2.04"] > 0
    assert set(outcome.samples.rss) == {"hub", "web", "worker", "receiver", "load"}
    assert outcome.samples.delivered[-1] > 0
    assert outcome.plot.parent == tmp_path and outcome.plot.read_bytes()[:4] == b"\x89PNG"
