"""Evaluation helpers: the trained teacher as a generator for the quality benchmark.

The teacher is the same STAR network trained for many-step sampling with no previous block of its own
making; it is evaluated by exporting it like any bundle and sampling with a many-step schedule
(`TEACHER_STEPS` steps on the same shifted flow-matching schedule), through the same block runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..model.autoencoder import TinyAutoencoder
from ..model.export import export_bundle
from ..model.presets import Preset
from ..model.star import StarModel
from ..runtime.sampler import FlowSchedule
from ..runtime.star import StarGenerator, StarSession
from .trainer import load_checkpoint

#: Denoising steps the teacher samples with.
TEACHER_STEPS = 16


def teacher_schedule(steps: int = TEACHER_STEPS, shift: float = 5.0) -> FlowSchedule:
    return FlowSchedule(tuple(round(1000 - i * 1000 / steps) for i in range(steps)), shift)


def teacher_factory(ckpt_dir: Path, work: Path, steps: int = TEACHER_STEPS) -> Callable:
    """factory(scene, width, height) -> a session sampling the trained teacher with `steps` steps."""
    ckpt_dir = Path(ckpt_dir)
    teacher, ae_state = load_checkpoint(ckpt_dir / "teacher.pt"), load_checkpoint(ckpt_dir / "autoencoder.pt")
    if teacher is None or ae_state is None:
        raise FileNotFoundError(f"{ckpt_dir} lacks teacher.pt or autoencoder.pt: run `starbridge train` first")
    preset = Preset.from_json(teacher["preset"])
    model = StarModel(preset.star)
    model.load_state_dict(teacher["modules"]["model"])
    ae = TinyAutoencoder(preset.autoencoder)
    ae.load_state_dict(ae_state["modules"]["autoencoder"])
    bundle = export_bundle(preset, model, ae, Path(work) / "teacher-bundle", weights="trained: teacher",
                           overwrite=True)  # fmt: skip
    generator = StarGenerator(bundle, prefer_cuda=False)
    schedule = teacher_schedule(steps, preset.shift)
    return lambda scene, width, height: StarSession(generator, scene, schedule=schedule)
