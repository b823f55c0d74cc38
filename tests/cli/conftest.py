"""Fixtures of the CLI tests: `starbridge serve` processes (cli_processes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_processes import ServeProcess


@pytest.fixture
def serve(demo_store: Path) -> Iterator:
    """Factory: `serve(*extra_args)` starts `starbridge serve` on free ports; all are killed at teardown."""
    started: list[ServeProcess] = []

    def start(*extra: str, store: Path | None = None) -> ServeProcess:
        p = ServeProcess(store or demo_store, *extra)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()
