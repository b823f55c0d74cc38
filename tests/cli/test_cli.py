"""The console script's commands that need no running backend."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from starbridge.cli import main


def test_scene_list_show_and_errors(demo_store: Path, tmp_path: Path, capsys):
    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    assert main(["--store", str(store), "scene", "list"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "1 scene(s)" in out
    assert main(["scene", "list", "--store", str(store)]) == 0  # after the subcommand too
    assert "1 scene(s)" in capsys.readouterr().out
    assert main(["--store", str(store), "scene", "show", "demo"]) == 0
    assert "scene         demo" in capsys.readouterr().out
    assert main(["--store", str(store), "scene", "show", "demo", "--json"]) == 0
    assert '"scene_id": "demo"' in capsys.readouterr().out
    assert main(["--store", str(store), "scene", "show", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["--store", str(store), "scene", "delete", "demo"]) == 1  # the built-in scene stays
    assert (store / "demo" / "scene.json").exists()


def test_scene_import_and_delete(demo_store: Path, tmp_path: Path, sample_video: Path, capsys):
    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    args = ["--store", str(store), "scene", "import", str(sample_video), "--id", "clip"]
    assert main([*args, "--max-frames", "3", "--max-side", "64"]) == 0
    assert "imported scene clip" in capsys.readouterr().out
    # errors name the flags typed, not the library's parameter names
    assert main([*args, "--max-frames", "3", "--max-side", "64"]) == 1
    assert "already exists" in (err := capsys.readouterr().err) and "pass --overwrite to replace it" in err
    for flags, message in (
        (["--max-side", "5"], "--max-side must be in [16,"),
        (["--fov", "0"], "--fov must be in (1, 179) degrees"),
        (["--fov", "50", "--lens", "26"], "give --fov or --lens, not both"),
        (["--lens", "2"], "--lens (a 35 mm-equivalent focal length) must be in [4, 1000] mm"),
        (["--max-frames", "-1"], "--max-frames must be >= 0"),
        (["--depth-dir", str(tmp_path), "--depth-model", str(tmp_path / "m")], "give --depth-dir or --depth-model"),
        (["--id", "Bad Id"], "--id 'Bad Id' is not a valid scene id"),
    ):
        assert main([*args[:5], *flags, "--overwrite"]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["--store", str(store), "scene", "delete", "clip"]) == 0
    assert not (store / "clip").exists()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    assert main(["--store", str(store), "scene", "import", str(bad)]) == 1
    assert "bad.mp4" in capsys.readouterr().err
    assert sorted(p.name for p in store.iterdir()) == ["demo"]


def test_doctor_names_the_provider():
    result = subprocess.run(
        [sys.executable, "-m", "starbridge.cli", "doctor"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ORT runs on" in result.stdout and "ExecutionProvider" in result.stdout
    assert "Failed to load" not in result.stdout + result.stderr  # no noisy provider errors


def test_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "starbridge.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    for command in ("serve", "fly", "scene", "bench", "doctor"):
        assert command in result.stdout


def test_model_info_takes_packaged_names(capsys):
    """`model info` resolves names the way `serve --model` does."""
    from starbridge.runtime.bundle import packaged_models

    assert "star-tiny" in packaged_models()
    assert main(["model", "info", "star-tiny"]) == 0
    assert "star-tiny" in (out := capsys.readouterr().out) and "256x144" in out
    assert main(["model", "info", "no-such-model"]) == 1
    assert "no packaged model of that name (packaged: star-tiny" in capsys.readouterr().err


def test_bench_points_to_the_source_tree(capsys):
    """Benchmarks are not in the installed package: the command says where they are, and writes nothing."""
    assert main(["bench", "render"]) == 2
    err = capsys.readouterr().err
    assert "python bench/bench_render.py [--out DIR]" in err and len(err.strip().splitlines()) == 1
    assert main(["bench", "transport", "--seconds", "1"]) == 2  # the old options still get the pointer
    assert "python bench/bench_transport.py --seconds 1 " in capsys.readouterr().err


def test_a_missing_dependency_is_one_line(monkeypatch, capsys):
    import starbridge.cli as cli

    def doctor(args):
        raise ModuleNotFoundError("No module named 'PIL'", name="PIL")

    monkeypatch.setattr(cli, "cmd_doctor", doctor)
    assert main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert "'PIL' is missing" in err and len(err.strip().splitlines()) == 1


def test_the_capture_summary_says_where_the_ground_filled_the_depth() -> None:
    from starbridge.cli import capture_summary

    report = {"frames_in_clip": 40, "tracking": "free motion", "depth": "multi-view-stereo", "depth_coverage": 0.4}
    assert "ground" not in capture_summary(report)
    assert "its plane carried into 5.2% of pixels" in capture_summary(report | {"ground_filled_fraction": 0.052})
    assert "ground" not in capture_summary(report | {"ground_filled_fraction": None})
