"""The Unity package's C# core, run for real under Mono: one pytest test per NUnit fixture.

The NUnit tests (unity_plugin/Tests/) run once per session against the peers conftest.py starts:
golden vectors byte for byte, the protobuf codec, conventions and reprojection, the frame ring's
seqlock, ZMTP against libzmq, a scripted backend, the live backend (shared memory, inline, version
mismatch, clock, keep-alive, Goodbye, allocation-free steady state, reprojection against real renders)
and a real `starbridge serve` killed and restarted. Every NUnit case must pass: an ignored one (a peer
missing) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = [
    "GoldenVectorTests",
    "ProtobufTests",
    "ConventionTests",
    "CoreUnitTests",
    "FrameRingTests",
    "ZmtpTests",
    "FakeBackendTests",
    "LiveBackendTests",
    "ReconnectTests",
]
GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "golden.json"


@pytest.mark.parametrize("fixture", FIXTURES)
def test_unity_nunit_fixture(nunit_run, fixture: str):
    cases = nunit_run.fixture(fixture)
    assert cases, f"NUnit ran no test of {fixture}:\n{nunit_run.output[-3000:]}"
    bad = [c for c in cases if c.result != "Success"]
    report = "\n\n".join(f"{c.name}: {c.result}\n{c.message}" for c in bad)
    assert not bad, f"{len(bad)} of {len(cases)} {fixture} cases failed:\n{report}"


def test_unity_nunit_fixtures_are_all_reported(nunit_run):
    # What the C# tests measured (fps, latency, reprojection error), shown with `pytest -s`.
    print(f"\nNUnit: {len(nunit_run.cases)} cases in {nunit_run.seconds:.1f} s")
    for line in nunit_run.output.splitlines():
        if line.startswith(("shared memory:", "inline:", "mean abs error", "reconnected:", "stop:")):
            print("  " + line)
    for case in sorted(nunit_run.cases, key=lambda c: -c.seconds)[:5]:
        print(f"  slowest: {case.seconds:5.2f} s {case.name}")
    ran = {c.fixture for c in nunit_run.cases}
    assert ran == set(FIXTURES), f"NUnit fixtures not listed in FIXTURES (or missing): {ran ^ set(FIXTURES)}"


def test_unity_every_golden_vector_is_tested_in_csharp(nunit_run):
    names = {m["name"] for m in json.loads(GOLDEN.read_text())["messages"]}
    tested = {c.name.rsplit(".", 1)[-1] for c in nunit_run.fixture("GoldenVectorTests") if c.result == "Success"}
    assert names <= tested, f"golden vectors without a passing C# test: {sorted(names - tested)}"
