"""Smoke test of bench/bench_tracking_worlds.py at toy size: both mappers side by side, two encodes, a table and
a JSON row per clip, encode and mapper; bad options refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_tracking_worlds  # noqa: E402


@pytest.mark.slow
def test_bench_tracking_worlds_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench_tracking_worlds.run(tmp_path, [0], ("handheld",), frames=12, width=160, height=90,
                                       mappers=("global", "incremental"), crfs=(14, 18), estimated=False,
                                       decodes=("rebuilt", "plain"))  # fmt: skip
    rows = report["clips"]
    assert [(r["crf"], r["decode"], r["mapper"]) for r in rows] == [
        (crf, decode, mapper)
        for crf in (14, 18)
        for decode in ("rebuilt", "plain")
        for mapper in ("global", "incremental")
    ]
    for r in rows:
        assert "estimated" not in r
        assert "failed" in r["given"] or r["given"]["rotation_error_deg_median"] >= 0.0
    assert report["settings"]["mappers"] == ["global", "incremental"] and report["settings"]["crfs"] == [14, 18]
    assert (tmp_path / f"tracking-worlds-{bench_tracking_worlds.host_tag()}.json").exists()
    out = capsys.readouterr().out
    assert "global       rebuilt  handheld   " in out and "incremental  plain    handheld   " in out


@pytest.mark.parametrize(
    "args",
    [["--mappers", "global,sequential"], ["--crfs", "16,99"], ["--crfs", "high"], ["--decodes", "plain,plain"],
     ["--decodes", "sharp"]],
)  # fmt: skip
def test_bench_tracking_worlds_refuses_bad_options(args: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench_tracking_worlds.main(args)
