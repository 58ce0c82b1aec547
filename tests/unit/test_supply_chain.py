"""The build's supply chain: a base image pinned by digest, pip-audit pinned and run by CI."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_docker_base_image_is_pinned_by_digest_and_keeps_its_tag() -> None:
    """Every FROM names python:3.11-slim (for people) and a sha256 digest (for the build)."""
    froms = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM")
    ]
    assert froms
    for line in froms:
        assert re.fullmatch(r"FROM python:3\.11-slim@sha256:[0-9a-f]{64}( AS \w+)?", line), line


def test_pip_audit_is_pinned_for_development() -> None:
    """requirements-dev.txt pins pip-audit to one version."""
    pins = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert any(re.fullmatch(r"pip-audit==[0-9.]+", pin) for pin in pins)


def test_ci_audits_the_runtime_requirements_strictly() -> None:
    """.ci/run calls `make audit`, which audits requirements.txt and fails on what it can't see."""
    assert re.search(r"^\s*make audit$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\naudit:", 1)[1].split("\n\n", 1)[0]
    for word in ("pip_audit", "--requirement requirements.txt", "--strict"):
        assert word in recipe
