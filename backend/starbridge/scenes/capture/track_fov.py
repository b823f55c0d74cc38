"""The field of view from structure from motion (tracking stage ``mapping``): the keyframes mapped at several
candidate fields of view with the focal length fixed, bundle adjustment with it free from each model that
registered nearly the most keyframes (twice: with all observations, then without those that reproject further
than fov_inlier_factor times the first one's mean error, the outliers that pull the focal length), all
keyframes mapped at the median of the second ones and adjusted again until the value stays put; its uncertainty
(how far the first ones disagree: the motion's grip on the focal length; none for cameras that travel along
their view hardly turning), a prior, and the words that say how it was chosen. Where the scene's right angles
give it too (track_vanishing.py: orthogonal vanishing points), that cue is combined with the motion's by their
uncertainties when the two agree (when they do not: the motion's if it measures it well, else the surer one,
`combine_fov`): it decides where the motion cannot (an orbit, a dolly), and barely moves a field of view the
motion measures well. Where the motion measures it less surely than fov_structure_above_deg, the walls' lean against
the ground in the candidates' models (track_structure.py) is a third cue, merged with the vanishing points'
(`merge_scene_cues`: by their uncertainties when they agree, neither when they do not) before that.

Why this search, and a free-focal adjustment after the refinement (track_refine.py) only to finish it (at a
tight robust loss, where the motion or the walls chose: tracking.py, TrackingConfig.fov_refit_loss_px),
measured on the benchmark's clips (40 frames at 320x180 through H.264, filmed at 48 degrees; every posed frame
and point adjusted from the refined observations; `python bench/bench_fov_valley.py`,
bench/results/fov-valley-vm.json, session 49):

* at tracking's loss (Cauchy, 0.5 px) the free-focal adjustment lands on handheld 47.6, orbit 49.2, moving
  49.8, dolly 48.3 (keyframes only 48.3, 48.3, 49.8, 46.7; every 2nd frame 48.0, 49.1, 49.9, 44.1): no better
  than this search (46.6, 47.5 from the walls, 48.0, the default) on the orbit and the walk among moving
  objects, and it wanders with the data; at 0.1 px, from the search's value, 48.1, 48.5, 48.8 (the dolly's
  landings do not agree from different starts: the search's "not measured" stays);
* the motion is not what limits it: each point placed where the true depth and cameras put it and projected
  back exactly, plus white noise of the observations' own spread (0.09-0.13 px), the same adjustment lands on
  48.03 +- 0.08, 47.98 +- 0.11, 47.93 +- 0.27 and 48.20 +- 0.72 (eight draws). The real observations' errors
  are structured: on horizontal surfaces (the ground's tiles) median 0.44-0.80 px, mostly across the image
  (along the tiles' stripes: the aperture problem), elsewhere 0.09-0.13 px with a tail (90th percentile
  0.5-0.9 px) at depth edges; with only the horizontal surfaces' observations made exact the landings are
  48.0, 49.1, 49.1 and 44.9. Filtering observations by their patch's structure (the affine alignment's
  translation information with the linear part marginalised: it sorts the errors, its top quarter has a
  median error of 0.05 px) moved the orbit's landing 49.2 -> 48.5-49.2 and the walk's 47.7 -> 46.8-47.2
  (dropping the weakest 10-75% of them on the orbit, 50-75% on the walk): not a fix either
  (docs/capture-measurements.md, session 49);
* the walls' lean measured again on the refined frames adjusted at fixed fields of view (orbit at 48: 45
  +4.3, 46.5 +2.8, 48 +0.9, 49.5 -0.8, 51 -1.3) brought the 48-degree orbit to 49.2 (benchmark gap 8.55 ->
  6.97 dB) but the 60-degree one from 61.9 to 62.6 (worse): the stereo's walls lean about a degree even
  with the true cameras (+1.3 at 48, single walls -5.2..+3.1), so it is not used either. On the walks the
  lean does not fall through upright (handheld -0.6, +1.5, +3.4, +0.8, +4.0; moving rises)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .track_mapping import MapBuilder, MapRun, focal_of, fov_of, model_arrays
from .track_structure import StructureCue, WallLean, search_structure
from .track_types import (
    FOV_DEFAULT,
    FOV_ESTIMATED,
    FOV_STRUCTURE,
    FOV_VANISHING,
    FovScore,
    TrackingConfig,
    TrackingError,
)
from .track_vanishing import VanishingCue

#: How the words name each cue.
#: How the warning of a field of view the search could not pin begins (tracking's refit withdraws it where every
#: frame's refined observations then measure it).
POORLY_DETERMINED = "the field of view is poorly determined by this camera motion"
CUE_NAMES = {FOV_VANISHING: "the vanishing points", FOV_STRUCTURE: "the walls and ground", FOV_ESTIMATED: "the motion"}


@dataclass(frozen=True)
class SceneCue:
    """The scene's cues (vanishing points, walls and ground) merged: the field of view (nan when none
    determines it), its standard deviation, which decided (FOV_VANISHING or FOV_STRUCTURE) and the words."""

    determined: bool
    vertical_fov_deg: float
    sigma_deg: float
    source: str
    note: str


class FovSearch:
    """One search. `scores` and `warnings` are the tracker's lists (appended to as the search goes, so they
    keep what was found even when it fails); `cue`: the vanishing points' (None: not searched); `structure`:
    the walls' lean in a mapped model (None: not searched); `source`, `sigma`, `note` and `structure_cue`
    are set by `run`."""

    def __init__(
        self,
        builder: MapBuilder,
        config: TrackingConfig,
        height: int,
        num_keyframes: int,
        report: Callable[[str, int, int], None],
        scores: list[FovScore],
        warnings: list[str],
        cue: VanishingCue | None = None,
        structure: Callable[[MapRun], WallLean] | None = None,
    ) -> None:
        self.builder = builder
        self.cfg = config
        self.height = height
        self.num_keyframes = num_keyframes
        self.report = report
        self.scores = scores
        self.warnings = warnings
        self.cue = cue
        self.structure = structure
        self.structure_cue: StructureCue | None = None
        self.scene: SceneCue | None = None
        self.source = FOV_ESTIMATED
        self.sigma = math.nan
        self.note = ""

    def run(self) -> MapRun:
        """Map at each candidate field of view; from each model that registered most keyframes, bundle
        adjustment with the focal length free, then again without its outliers; the median of the second
        ones (the spread of the first ones says how well the motion measures it); all keyframes mapped there,
        adjusted once more the same way, mapped at the result and adjusted again until it settles (where it
        does not within `fov_refinements`, the median of its steps); mapped at the result."""
        cfg = self.cfg
        builder = self.builder
        h = self.height
        nk = self.num_keyframes
        lo, hi = cfg.fov_range_deg
        candidates = list(dict.fromkeys(cfg.fov_candidates_deg))
        subset = list(range(0, nk, 2)) if nk > cfg.coarse_keyframes else None
        if subset is not None and subset[-1] != nk - 1:
            subset.append(nk - 1)
        n_coarse = len(subset) if subset is not None else nk
        total = 2 * len(candidates) + 3
        done = 0

        def tick() -> None:
            nonlocal done, total
            done += 1
            total = max(total, done + 1)
            self.report("mapping", done, total)

        runs: list[MapRun] = []
        for fov in candidates:
            run = builder.run(focal_of(fov, h), subset)
            runs.append(run)
            tick()
        most = max(r.num_registered for r in runs)
        if most < 0.5 * n_coarse:
            self.report("mapping", done, done)
            raise TrackingError(
                "no_track",
                f"could not track the camera: structure from motion placed at most {most} of {n_coarse} keyframes",
            )
        refined: list[float] = []  # after dropping outliers: the estimate
        plain: list[float] = []  # with them: how firmly the motion pins the focal length down
        for run in runs:
            free = None
            if run.num_registered >= max(most - 1, 0.9 * most) and run.num_points:
                loose, free = self._free(run)
                tick()
                if lo <= loose.vertical_fov_deg <= hi:
                    plain.append(loose.vertical_fov_deg)
                if lo <= free.vertical_fov_deg <= hi:
                    refined.append(free.vertical_fov_deg)
            self._score(run, "candidate", free.vertical_fov_deg if free is not None else math.nan)
        # (no refinement stayed in range, or too few to agree: the motion does not measure it, the default holds)
        median = float(np.median(refined)) if refined else cfg.assumed_fov_deg
        spread = _spread(plain) if len(refined) >= 3 else math.inf
        tried = [r for r in runs if r.num_registered >= max(most - 1, 0.9 * most) and r.num_points]
        if _straight_ahead(tried, cfg.fov_forward_deg, cfg.fov_min_turn_deg):
            spread = math.inf  # moving along the view, hardly turning: a known blind spot, whatever they say

        def map_all(fovs: list[float]) -> MapRun:
            """All keyframes mapped at the first of `fovs` where that works (the others: retries)."""
            for fov in fovs:
                run = builder.run(focal_of(fov, h))
                tick()
                if run.num_registered >= 0.5 * nk and run.num_points:
                    return run
            raise TrackingError(
                "no_track",
                f"could not track the camera: {n_coarse} of the keyframes could be mapped, but not all {nk} together",
            )

        def near(fov: float) -> list[float]:
            """`fov`, then `fov_retry_step_deg` either side, then twice that (the mapper fails at some focal
            lengths and not a fraction of a degree away)."""
            step = cfg.fov_retry_step_deg
            return [f for f in (fov, fov + step, fov - step, fov + 2 * step, fov - 2 * step) if lo <= f <= hi]

        retries = sorted(refined, key=lambda r: abs(r - median))[:2]
        steps = [median]
        sigma = math.inf
        final: MapRun | None = None
        if spread <= cfg.fov_unmeasurable_deg:
            # all keyframes at the consensus; adjust with the focal length free, map there, until it stays put
            base = run = map_all([*near(median), *retries])
            for _ in range(cfg.fov_refinements):
                free = self._free(run)[1]
                tick()
                self._score(run, "consensus" if run is base else "refine", free.vertical_fov_deg)
                if not (lo <= free.vertical_fov_deg <= hi and abs(free.vertical_fov_deg - median) <= 3 * spread + 8):
                    break
                steps.append(free.vertical_fov_deg)
                df = free.focal_sigma
                stat = abs(fov_of(free.focal - df, h) - fov_of(free.focal + df, h)) / 2 if df < free.focal else 0.0
                sigma = math.hypot(spread, cfg.fov_sigma_inflation * stat, cfg.fov_sigma_floor_deg)
                final = free
                if abs(steps[-1] - steps[-2]) < 1.0:
                    break
                again = builder.run(free.focal)
                tick()
                if again.num_registered < base.num_registered - 1 or not again.num_points:
                    break
                run = again
        motion = steps[-1]
        if len(steps) >= 3 and abs(steps[-1] - steps[-2]) >= 1.0:
            # it did not settle (world 2's walk among moving objects: 50.3 -> 43.2 -> 50.8 -> 42.7, true 48):
            # the middle of where it went, as uncertain as its steps scatter
            motion = float(np.median(steps))
            sigma = math.hypot(sigma, _spread(steps))
        if self.structure is not None and not sigma <= cfg.fov_structure_above_deg:
            # every model that placed half the keyframes: the walls need no complete map, and a model the
            # mapper found harder at a wrong focal length still shows its lean
            well = {r.vertical_fov_deg: r for r in runs if r.num_registered >= max(3, 0.5 * most) and r.num_points}
            start = median if refined else cfg.assumed_fov_deg

            def lean_at(fov: float) -> WallLean:
                lean = self.structure(well[fov])  # type: ignore[misc]
                tick()
                return lean

            self.structure_cue = search_structure(list(well), start, lean_at)
        self.scene = merge_scene_cues(self.cue, self.structure_cue, cfg)
        fov, source, sigma_all = combine_fov(motion, sigma, self.scene, self.cfg)
        remapped = False
        if final is None or abs(final.vertical_fov_deg - fov) > 0.25:
            remapped = True
            final = map_all([*near(fov), *retries])
            self._score(final, "final", math.nan)
            final = builder.adjusted(final, final.focal)  # a robust (Cauchy) adjustment, as the refinements
        self.report("mapping", done, done)
        self.sigma = sigma_all
        self.note = self._fov_words(
            source, candidates, refined, steps, motion, sigma, final.vertical_fov_deg, sigma_all
        )
        if abs(final.vertical_fov_deg - fov) > 2 * cfg.fov_retry_step_deg + 1e-6:
            missed = (
                f"structure from motion could not map the keyframes together at the field of view chosen "
                f"({fov:.1f} degrees) or within {2 * cfg.fov_retry_step_deg:g} of it: mapped at "
                f"{final.vertical_fov_deg:.1f} instead, a candidate's estimate"
            )
            self.note += f"; {missed}"
            self.warnings.append(f"{missed}; {cfg.fov_hint}")
        elif remapped and abs(final.vertical_fov_deg - fov) > 1e-6:
            self.note += (
                f"; mapped at {final.vertical_fov_deg:.2f} degrees, beside it (structure from motion could not map "
                f"the keyframes together at {fov:.2f})"
            )
        return final

    def _fov_words(
        self,
        source: str,
        candidates: list[float],
        refined: list[float],
        steps: list[float],
        motion: float,
        sigma: float,
        fov: float,
        sigma_all: float,
    ) -> str:
        cfg = self.cfg
        cue = self.scene
        moved = (
            f"moved {len(refined)} of them to {', '.join(f'{r:.0f}' for r in sorted(refined))}"
            if refined
            else "moved none of them to a plausible value"
        )
        scan = (
            f"the keyframes were mapped at {len(candidates)} candidate fields of view "
            f"({min(candidates):g}-{max(candidates):g} degrees) and bundle adjustment with the focal length free "
            f"(then again without its outliers) {moved}"
        )
        lines = cue.note if cue is not None else ""
        if source == FOV_DEFAULT:
            self.source = FOV_DEFAULT
            self.warnings.append(
                f"the field of view could not be measured from this camera motion{' or the scene' if cue else ''}; "
                f"assumed {cfg.assumed_fov_deg:.1f} degrees{cfg.default_fov_words} ({cfg.fov_hint})"
            )
            disagree = ", which do not agree" if refined else ""
            return (
                f"assumed {cfg.assumed_fov_deg:.1f} degrees{cfg.default_fov_words}: {scan}{disagree} (this "
                "camera motion, straight ahead, circling one point or barely moving, hardly measures it)"
                + (f"; nor does the scene ({lines})" if cue is not None else "")
            )
        self.source = source
        measured = math.isfinite(sigma) and sigma <= cfg.fov_unmeasurable_deg
        if measured:
            words = (
                f"estimated: {scan}; all keyframes mapped at their median ({steps[0]:.1f}) and adjusted again "
                f"({' -> '.join(f'{x:.1f}' for x in steps[1:]) or 'no change'}; mapping again in between"
                f"{'' if motion == steps[-1] else ', which did not settle: their median'}): "
                f"{motion:.1f} +- {sigma:.1f} degrees"
            )
        else:
            words = (
                f"from {CUE_NAMES.get(source, 'the scene')} ({lines}); the camera motion does not measure it ({scan}"
                f"{', which do not agree' if refined else ''})"
            )
        if measured and cue is not None and cue.determined:
            if cues_agree(motion, sigma, cue, cfg):
                most = CUE_NAMES.get(source, "the motion")
                words += (
                    f"; combined with the scene ({lines}; {most} weighing most): {fov:.1f} +- {sigma_all:.1f} degrees"
                )
            else:
                kept = (
                    "the motion's kept (it measures it well)"
                    if sigma <= cfg.fov_tolerance_deg
                    else (
                        "the motion's kept, being surer" if source == FOV_ESTIMATED else "the scene's kept, being surer"
                    )
                )
                words += f"; the scene ({lines}) disagrees: {kept}"
        elif measured and cue is not None:
            words += f" (the scene: {lines})"
        if abs(fov - motion) > 0.05 and source == FOV_ESTIMATED and not (cue is not None and cue.determined):
            words += f" ({fov:.1f} with the prior of {cfg.assumed_fov_deg:.1f} +- {cfg.fov_prior_sigma_deg:g})"
        if sigma_all > cfg.fov_tolerance_deg:
            self.warnings.append(f"{POORLY_DETERMINED} ({fov:.0f} +- {sigma_all:.0f} degrees); {cfg.fov_hint}")
        return words

    def _free(self, run: MapRun) -> tuple[MapRun, MapRun]:
        """The run adjusted with the focal length free, with all its observations and then without those that
        reproject further than fov_inlier_factor times its mean error (the second one measures the focal
        length)."""
        loose = self.builder.adjusted(run)
        if not loose.num_points or not math.isfinite(loose.mean_error_px):
            return loose, loose
        return loose, self.builder.adjusted(loose, max_error_px=self.cfg.fov_inlier_factor * loose.mean_error_px)

    def _score(self, run: MapRun, stage: str, refined_fov: float) -> None:
        self.scores.append(fov_score(run, stage, refined_fov))


def _straight_ahead(runs: list[MapRun], max_angle_deg: float, min_turn_deg: float) -> bool:
    """The mapped cameras travel along their view (the path within `max_angle_deg` of the mean viewing
    direction) and turn less than `min_turn_deg` between any two, by the median over the candidates' models
    (one mapped at a wrong focal length may be distorted): the focal length is then all but unobservable (a
    pure translation does not measure it at all), whatever the adjustments agree on."""
    angles, turns = [], []
    for run in runs:
        if run.reconstruction is None or run.num_registered < 2:
            continue
        poses = model_arrays(run)[0]
        order = sorted(poses)  # keyframes in time order
        rots = np.array([poses[k][:, :3] for k in order])
        centres = np.array([-poses[k][:, :3].T @ poses[k][:, 3] for k in order])
        path = centres[-1] - centres[0]
        view = rots[:, 2, :].mean(axis=0)  # mean viewing direction (OpenCV +z) in the world
        norm = float(np.linalg.norm(path)) * float(np.linalg.norm(view))
        if norm <= 0:
            continue
        angles.append(math.degrees(math.acos(min(abs(float(path @ view)) / norm, 1.0))))
        traces = np.einsum("aij,bij->ab", rots, rots)  # trace(Ra Rb^T) of every pair
        turns.append(math.degrees(math.acos(float(np.clip((traces.min() - 1) / 2, -1.0, 1.0)))))
    if not angles:
        return False
    return float(np.median(angles)) <= max_angle_deg and float(np.median(turns)) < min_turn_deg


def _spread(values: list[float]) -> float:
    """Robust standard deviation (1.4826 median absolute deviation) of at least three values, else inf."""
    if len(values) < 3:
        return math.inf
    arr = np.array(values)
    return 1.4826 * float(np.median(np.abs(arr - np.median(arr))))


def fov_score(run: MapRun, stage: str, refined_fov: float) -> FovScore:
    """A mapping run's score (FovScore) at `stage`, with where the free-focal adjustment moved it (nan: not
    tried)."""
    return FovScore(run.vertical_fov_deg, stage, run.num_registered, run.num_points, run.mean_error_px, refined_fov)


def cues_agree(
    motion: float, sigma: float, cue: VanishingCue | StructureCue | SceneCue, config: TrackingConfig
) -> bool:
    """The scene's field of view agrees with the motion's (within fov_cue_agreement sigmas)."""
    return abs(cue.vertical_fov_deg - motion) <= config.fov_cue_agreement * math.hypot(sigma, cue.sigma_deg)


def merge_scene_cues(
    vanishing: VanishingCue | None, structure: StructureCue | None, config: TrackingConfig
) -> SceneCue | None:
    """The scene's cues as one (None when neither was searched): the determined ones by their inverse
    variances when they agree within fov_cue_agreement combined standard deviations (the surer decides), none
    when they disagree (one of them is mistaken, and which cannot be told)."""
    named = [(FOV_VANISHING, vanishing), (FOV_STRUCTURE, structure)]
    searched = [(source, c) for source, c in named if c is not None]
    if not searched:
        return None
    note = "; ".join(f"{CUE_NAMES[source][4:]}: {c.note}" for source, c in searched)
    sure = [(source, c) for source, c in searched if c.determined]
    if len(sure) == 2:
        (_, a), (_, b) = sure
        if abs(a.vertical_fov_deg - b.vertical_fov_deg) > config.fov_cue_agreement * math.hypot(
            a.sigma_deg, b.sigma_deg
        ):
            return SceneCue(False, math.nan, math.inf, FOV_VANISHING, f"{note} (they disagree: neither is used)")
    if not sure:
        return SceneCue(False, math.nan, math.inf, FOV_VANISHING, note)
    weights = [1.0 / max(c.sigma_deg, 1e-6) ** 2 for _, c in sure]
    value = sum(w * c.vertical_fov_deg for w, (_, c) in zip(weights, sure, strict=True)) / sum(weights)
    source = sure[int(np.argmax(weights))][0]
    return SceneCue(True, value, 1.0 / math.sqrt(sum(weights)), source, note)


def combine_fov(
    motion: float, sigma: float, cue: VanishingCue | SceneCue | None, config: TrackingConfig
) -> tuple[float, str, float]:
    """The field of view from the motion's estimate (`motion` +- `sigma`; not measured when sigma is inf or
    above fov_unmeasurable_deg), the vanishing points' cue (None, or not determined: none) and the prior
    (default +- fov_prior_sigma_deg), weighted by their inverse variances; which decided (FOV_ESTIMATED or
    FOV_VANISHING, the heavier, or FOV_DEFAULT when neither measures it); the standard deviation (without
    the prior; inf for the default). The cue's `source` names it (FOV_VANISHING when it has none). When
    motion and scene disagree, a motion that measures it
    well (within fov_tolerance_deg) is kept: the scene's right angles can be mistaken (two directions not
    quite at right angles); else the surer of the two."""
    cues: list[tuple[float, float, str]] = []
    if math.isfinite(sigma) and sigma <= config.fov_unmeasurable_deg:
        cues.append((motion, max(sigma, 1e-6), FOV_ESTIMATED))
    if cue is not None and cue.determined:
        seen = (cue.vertical_fov_deg, max(cue.sigma_deg, 1e-6), getattr(cue, "source", FOV_VANISHING))
        if not cues or cues_agree(motion, sigma, cue, config):
            cues.append(seen)
        elif sigma > config.fov_tolerance_deg and seen[1] < sigma:
            cues = [seen]
    if not cues:
        return config.assumed_fov_deg, FOV_DEFAULT, math.inf
    weights = [1.0 / s**2 for _, s, _ in cues]
    source = cues[int(np.argmax(weights))][2]
    total = sum(weights)
    value = sum(w * v for w, (v, _, _) in zip(weights, cues, strict=True))
    if config.fov_prior_sigma_deg > 0:
        w_prior = 1.0 / config.fov_prior_sigma_deg**2
        return (value + w_prior * config.assumed_fov_deg) / (total + w_prior), source, 1.0 / math.sqrt(total)
    return value / total, source, 1.0 / math.sqrt(total)
