"""A clip of several shots: the longest imported by default, another by its number (`shot`), or each as a scene
of its own (`import_shots`, `starbridge scene import --shot all`); bad numbers and taken ids refused before any
scene is written.

The clip: a 14-frame dolly through the procedural town glued to a 9-frame pan of another world, mirrored and in
another light (the same pair test_capture_cuts.py finds two shots in), through H.264 like a real clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starbridge.cli import main
from starbridge.errors import InvalidArgument
from starbridge.scenes.bundle import BundleExists
from starbridge.scenes.procedural.clips import ClipConfig, render_clip
from starbridge.scenes.store import SceneStore
from starbridge.scenes.video import decode_video, write_video

SIDE = 128
FIRST, SECOND = 14, 9


@pytest.fixture(scope="module")
def glued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    a = render_clip(ClipConfig(kind="dolly", frames=FIRST, width=128, height=72, world_seed=0)).frames
    b = render_clip(ClipConfig(kind="pan", frames=SECOND, width=128, height=72, world_seed=7)).frames[:, ::-1]
    b = (b.astype(np.int32) * [0.6, 0.8, 1.3]).clip(0, 255).astype(np.uint8)  # another place, another light
    return write_video(tmp_path_factory.mktemp("clip") / "glued.mp4", np.concatenate([a, b]), 30.0)


def quiet(*args: object) -> None:
    pass


def test_the_longest_shot_by_default_and_another_by_its_number(glued: Path, tmp_path: Path) -> None:
    store = SceneStore(tmp_path / "store")
    longest = store.import_video(glued, scene_id="longest", max_side=SIDE, progress=quiet)
    report = longest.meta.capture
    assert longest.meta.frame_count == FIRST and report["kept_frames"] == [0, FIRST]
    assert report["shot"] == 1 and report["shot_chosen"] == "longest"
    said = " | ".join(report["warnings"])
    assert f"the clip has 2 shots (1: frames 0-{FIRST - 1}, 2: frames {FIRST}-{FIRST + SECOND - 1})" in said
    assert "kept the longest" in said and "import another by its number" in said

    second = store.import_video(glued, scene_id="second", max_side=SIDE, shot=2, progress=quiet)
    report = second.meta.capture
    assert second.meta.frame_count == SECOND and report["kept_frames"] == [FIRST, FIRST + SECOND]
    assert report["shot"] == 2 and report["shot_chosen"] == "given"
    assert f"kept shot 2, frames {FIRST} to {FIRST + SECOND - 1}, as asked" in " | ".join(report["warnings"])
    assert second.meta.title == "glued (shot 2)"
    # the scene's frames are the second shot's, not the first's
    decoded = decode_video(glued, SIDE, 0, quiet).frames
    assert np.array_equal(second.frames.shape, decoded[FIRST:].shape)
    assert np.abs(second.frames.astype(int) - decoded[FIRST:]).mean() < 4
    assert np.abs(second.frames.astype(int) - decoded[:SECOND]).mean() > 20


def test_a_shot_past_the_last_or_not_a_number_is_refused_and_nothing_is_written(glued: Path, tmp_path: Path) -> None:
    store = SceneStore(tmp_path / "store")
    with pytest.raises(InvalidArgument, match=r"shot 3: the clip has 2 shots \(1: frames 0-13, 2: frames 14-22\)"):
        store.import_video(glued, scene_id="third", max_side=SIDE, shot=3, progress=quiet)
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(InvalidArgument, match="shot must be a shot number counted from 1"):
            store.import_video(glued, scene_id="bad", max_side=SIDE, shot=bad, progress=quiet)  # type: ignore[arg-type]
    assert not store.exists("third") and not store.exists("bad")
    assert not [p for p in store.root.iterdir() if not p.name.startswith(".")]


def test_each_shot_as_a_scene_of_its_own(glued: Path, tmp_path: Path) -> None:
    store = SceneStore(tmp_path / "store")
    stages: list[str] = []
    bundles = store.import_shots(glued, max_side=SIDE, progress=lambda stage, done, total: stages.append(stage))
    assert [b.meta.scene_id for b in bundles] == ["glued-1", "glued-2"]
    assert [b.meta.frame_count for b in bundles] == [FIRST, SECOND]
    assert [b.meta.capture["shot"] for b in bundles] == [1, 2]
    assert [store.get(i).meta.frame_count for i in ("glued-1", "glued-2")] == [FIRST, SECOND]
    assert stages.count("decode") >= 1 and stages.count("write") >= 4  # decoded once; each scene written
    assert not any(s.startswith("shot ") for s in stages)  # the bars' prefix is not the callback's stage

    # an id taken: refused before any shot is captured, and what was there is kept
    store.delete("glued-1")
    with pytest.raises(BundleExists, match="glued-2"):
        store.import_shots(glued, max_side=SIDE, progress=quiet)
    assert not store.exists("glued-1") and store.get("glued-2").meta.frame_count == SECOND
    # with overwrite both are written again
    again = store.import_shots(glued, max_side=SIDE, overwrite=True, progress=quiet)
    assert [b.meta.scene_id for b in again] == ["glued-1", "glued-2"]


def test_the_cli_imports_a_shot_or_all_of_them(glued: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = str(tmp_path / "store")
    assert main(["--store", store, "scene", "import", str(glued), "--max-side", "128", "--shot", "2"]) == 0
    out = capsys.readouterr().out
    assert "imported scene glued:" in out and "(shot 2 of 2, as asked)" in out
    every = ["--shot", "all", "--id", "t"]
    assert main(["--store", store, "scene", "import", str(glued), "--max-side", "128", *every]) == 0
    out = capsys.readouterr().out
    assert "2 scenes, one per shot: t-1, t-2" in out
    assert main(["--store", store, "scene", "import", str(glued), "--id", "u", "--shot", "3"]) == 1
    assert "--shot 3: the clip has 2 shots" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--store", store, "scene", "import", str(glued), "--shot", "first"])
    assert exit_info.value.code == 2
    assert "expected a shot number counted from 1, or 'all'" in capsys.readouterr().err
    assert sorted(m.scene_id for m in SceneStore(store).list() if m.scene_id != "demo") == ["glued", "t-1", "t-2"]


def test_a_film_of_many_shots_names_the_first_dozen() -> None:
    from starbridge.scenes.capture.pipeline import SHOTS_NAMED, shots_words

    shots = [(10 * k, 10 * k + 10) for k in range(40)]
    said = shots_words(shots)
    assert said.startswith("1: frames 0-9, 2: frames 10-19") and f"{SHOTS_NAMED}: frames 110-119" in said
    assert "13: frames" not in said and said.endswith(f"and {40 - SHOTS_NAMED} more (the report's 'shots' lists them)")
    assert shots_words(shots[:2]) == "1: frames 0-9, 2: frames 10-19"
