"""`starbridge train` at toy scale: every stage runs, losses go down, checkpoints round-trip and resume,
runs are reproducible (and so are resumed ones), and the student exports to a bundle the runtime serves.
Never a full training (CI budget)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from starbridge.cli import main  # noqa: E402
from starbridge.train.losses import dmd_loss, flow_matching_loss, sample_sigma  # noqa: E402
from starbridge.train.trainer import STAGES, BlockPool, TrainConfig, Trainer, load_checkpoint  # noqa: E402

STEPS = {"autoencoder": 40, "teacher": 12, "real-teacher": 4, "student": 3}


@pytest.fixture(scope="module")
def pool():
    from starbridge.model.presets import get_preset

    return BlockPool(get_preset("star-tiny-test"), pool=2, seed=0)


def _config(out: Path, **steps) -> TrainConfig:
    return TrainConfig(out=out, preset="star-tiny-test", steps={**STEPS, **steps}, batch=2, pool=2,
                       checkpoint_every=5)  # fmt: skip


def test_all_stages_checkpoint_resume_and_export(tmp_path: Path, pool, demo_store):
    trainer = Trainer(_config(tmp_path), pool=pool)
    ae_losses = trainer.train_autoencoder()
    assert len(ae_losses) == 40 and np.mean(ae_losses[-8:]) < np.mean(ae_losses[:8])  # it learns
    teacher_losses = trainer.train_teacher()
    assert all(np.isfinite(teacher_losses))
    trainer.train_real_teacher()
    student_losses = trainer.train_student()
    assert len(student_losses) == 3 and all(np.isfinite(student_losses))
    for stage in STEPS:
        state = load_checkpoint(tmp_path / f"{stage}.pt")
        assert state["step"] == STEPS[stage] and state["optimizers"] and len(state["losses"]) == STEPS[stage]
    assert set(load_checkpoint(tmp_path / "student.pt")["modules"]) == {"model", "fake"}

    # resume: more steps continue from the checkpoint, not from zero
    more = Trainer(_config(tmp_path, teacher=15), pool=pool)
    before = more.load_star("teacher").state_dict()
    losses = more.train_teacher()
    assert len(losses) == 15  # 12 restored + 3 new
    after = more.load_star("teacher").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    bundle = trainer.export(tmp_path / "bundle")
    from starbridge.geometry.camera import Intrinsics
    from starbridge.runtime.generator import FrameRequest
    from starbridge.runtime.star import StarGenerator
    from starbridge.scenes.store import SceneStore

    gen = StarGenerator(bundle, prefer_cuda=False)
    assert gen.info.weights.startswith("trained: student")
    session = gen.open(SceneStore(demo_store).get("demo"), 256, 144)
    requests = [FrameRequest(np.eye(4), Intrinsics.from_fov(60, 256, 144), 0.0)] * 2
    assert session.generate_block(requests)[0].shape == (144, 256, 4)

    # the teacher, exported and sampled with many steps, is a generator for the quality benchmark
    from starbridge.train.evaluate import teacher_factory, teacher_schedule

    assert len(teacher_schedule(16).sigmas) == 16 and teacher_schedule(16).sigmas[0] == 1.0
    teacher = teacher_factory(tmp_path, tmp_path / "work", steps=6)(SceneStore(demo_store).get("demo"), 256, 144)
    assert len(teacher.schedule.sigmas) == 6 and teacher.generate_block(requests)[1].shape == (144, 256, 4)


#: Even smaller runs for the reproducibility test, which trains every stage three times over.
REPRO_STEPS = {"autoencoder": 4, "teacher": 3, "real-teacher": 2, "student": 2}


def _repro_config(out: Path, seed: int = 0, **steps) -> TrainConfig:
    return TrainConfig(out=out, preset="star-tiny-test", seed=seed, steps={**REPRO_STEPS, **steps}, batch=2, pool=2,
                       checkpoint_every=2)  # fmt: skip


def _stage_weights(out: Path) -> dict:
    return {stage: load_checkpoint(out / f"{stage}.pt")["modules"] for stage in STAGES}


def _assert_same_weights(a: dict, b: dict) -> None:
    for stage in STAGES:
        for module, state in a[stage].items():
            for key, value in state.items():
                assert torch.equal(value, b[stage][module][key]), (stage, module, key)


@pytest.mark.slow
def test_runs_are_reproducible_and_resume_exactly(tmp_path: Path, pool):
    """Two runs with one seed give identical losses and weights; a run stopped part-way through every stage and
    resumed by a fresh trainer matches the uninterrupted one; another seed differs."""
    runs = {}
    for name in ("a", "b"):
        trainer = Trainer(_repro_config(tmp_path / name), pool=pool)
        runs[name] = [getattr(trainer, "train_" + stage.replace("-", "_"))() for stage in STAGES]
    assert runs["a"] == runs["b"]
    _assert_same_weights(_stage_weights(tmp_path / "a"), _stage_weights(tmp_path / "b"))

    resumed = []
    for stage in STAGES:
        stop = REPRO_STEPS[stage] - 1  # the stopped run checkpoints where it stops
        Trainer(_repro_config(tmp_path / "c", **{stage: stop}), pool=pool).run((stage,))
        trainer = Trainer(_repro_config(tmp_path / "c"), pool=pool)
        resumed.append(getattr(trainer, "train_" + stage.replace("-", "_"))())
    assert resumed == runs["a"]
    _assert_same_weights(_stage_weights(tmp_path / "c"), _stage_weights(tmp_path / "a"))

    other = Trainer(_repro_config(tmp_path / "d", seed=1), pool=pool).train_autoencoder()
    assert other != runs["a"][0]


def test_later_stages_need_earlier_checkpoints(tmp_path: Path, pool):
    with pytest.raises(FileNotFoundError, match="autoencoder"):
        Trainer(_config(tmp_path), pool=pool).train_teacher()


def test_losses_as_documented():
    x0, noise = torch.randn(2, 4, 2, 3, 3), torch.randn(2, 4, 2, 3, 3)
    assert flow_matching_loss(noise - x0, x0, noise) == 0
    sigma = sample_sigma(1000, torch.Generator().manual_seed(0))
    assert 0 < sigma.min() and sigma.max() < 1 and sigma.median() > 0.5  # shifted towards noise
    gen = x0.clone().requires_grad_(True)
    real, fake = x0 + 1.0, x0 + 3.0
    dmd_loss(gen, real, fake).backward()
    # gradient points from fake towards real: descending it moves samples towards the teacher
    assert (gen.grad > 0).all()


def test_train_cli(tmp_path: Path, capsys):
    args = ["train", "--out", str(tmp_path), "--preset", "star-tiny-test", "--stage", "autoencoder",
            "--autoencoder-steps", "3", "--pool", "1", "--batch", "1"]  # fmt: skip
    assert main(args) == 0
    assert load_checkpoint(tmp_path / "autoencoder.pt")["step"] == 3
