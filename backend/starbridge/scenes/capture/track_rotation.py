"""Rotation-only camera tracking (a tripod pan, or a camera whose translation is negligible next to the scene).

With no translation, two views of any scene are related by the homography H = K R K^-1: it holds the
rotation *and* the focal length, which a pan of some tens of degrees measures well (a wrong focal length
makes K^-1 H K no rotation). So:

1. per matched keyframe pair, a homography (RANSAC), and the focal length whose homographies are the most
   rotation-like over a range of fields of view (unless it is given);
2. rotations chained along a spanning tree of the pairs, then refined jointly with the focal length by
   Levenberg-Marquardt with Huber weights on the symmetric transfer error of the inlier matches (analytic
   derivatives; a few hundred matches per pair);
3. any other frame: its rotation from its matches with posed keyframes (scipy's robust least squares).

Rotations are OpenCV world-to-camera (x_cam = R x_world), keyframe 0 the identity; pixels are centred on the
principal point (the image centre).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pycolmap
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

#: Residuals are capped here when scoring candidate focal lengths from homographies, pixels.
SCORE_CAP_PX = 6.0
#: Matches used per pair in the joint refinement (evenly spread subsample; keeps it fast).
MAX_MATCHES_PER_PAIR = 200


@dataclass(frozen=True)
class PairMatches:
    """Inlier matches of keyframes a < b: (M, 2) centred pixel positions in each, and their homography
    (RANSAC; None when there are too few) -- `pair_matches` makes them."""

    a: int
    b: int
    xa: np.ndarray
    xb: np.ndarray
    h: np.ndarray | None = None


def pair_matches(a: int, b: int, xa: np.ndarray, xb: np.ndarray) -> PairMatches:
    """The pair with its homography (x_b ~ H x_a)."""
    return PairMatches(a, b, xa, xb, _homography(xa, xb))


@dataclass(frozen=True)
class RotationSolution:
    focal: float
    #: (K, 3, 3) world-to-camera rotations of the keyframes; NaN for keyframes no pair connects.
    rotations: np.ndarray
    #: Symmetric transfer error of the inlier matches under the solution: median and 90th percentile, px.
    median_error_px: float
    p90_error_px: float
    #: Largest rotation between two matched keyframes, degrees (small: the focal length is not measurable).
    max_pair_angle_deg: float
    #: How much worse the fit gets with the focal length 10% off, relative (small: not measurable).
    focal_sensitivity: float


def _nearest_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _homography(xa: np.ndarray, xb: np.ndarray) -> np.ndarray | None:
    if len(xa) < 8:
        return None
    result = pycolmap.estimate_homography_matrix(xa, xb, pycolmap.RANSACOptions(max_error=3.0, random_seed=0))
    if result is None:
        return None
    return np.asarray(result["H"], dtype=np.float64)


def _rotation_from_homography(h: np.ndarray, focal: float) -> np.ndarray:
    k = np.diag([focal, focal, 1.0])
    kinv = np.diag([1.0 / focal, 1.0 / focal, 1.0])
    m = kinv @ h @ k
    det = np.linalg.det(m)
    if abs(det) < 1e-12:
        return np.eye(3)
    m = m / np.cbrt(det)
    return _nearest_rotation(m)


def _transfer(x: np.ndarray, r: np.ndarray, focal: float) -> np.ndarray:
    """Pixels `x` (centred) of one camera seen through relative rotation `r` (x' ~ K r K^-1 x)."""
    rays = np.column_stack([x / focal, np.ones(len(x))]) @ r.T
    z = np.maximum(rays[:, 2], 1e-6)
    return focal * rays[:, :2] / z[:, None]


def _pair_score(pairs: Sequence[PairMatches], hs: Sequence[np.ndarray | None], focal: float) -> float:
    """Mean capped transfer error when each pair's homography is forced to be a rotation at `focal`."""
    total, count = 0.0, 0
    for pair, h in zip(pairs, hs, strict=True):
        if h is None:
            continue
        r = _rotation_from_homography(h, focal)
        err = np.linalg.norm(_transfer(pair.xa, r, focal) - pair.xb, axis=1)
        total += float(np.minimum(err, SCORE_CAP_PX).sum())
        count += len(err)
    return total / max(count, 1)


def estimate_focal(
    pairs: Sequence[PairMatches], fov_range_deg: tuple[float, float], height: int
) -> tuple[float, list[tuple[float, float]]]:
    """Focal length (px) whose homographies are the most rotation-like, scanned over the vertical
    field-of-view range then refined; also the (fov, score) scan."""
    hs = [p.h for p in pairs]
    lo, hi = fov_range_deg

    def focal_of(fov: float) -> float:
        return 0.5 * height / math.tan(math.radians(fov) / 2.0)

    scan = [(fov, _pair_score(pairs, hs, focal_of(fov))) for fov in np.arange(lo, hi + 1e-9, 2.5)]
    best = min(scan, key=lambda s: s[1])[0]
    fine = [(fov, _pair_score(pairs, hs, focal_of(fov))) for fov in np.arange(best - 2.5, best + 2.51, 0.25)]
    best = min(fine, key=lambda s: s[1])[0]
    return focal_of(best), scan


def _chain(count: int, pairs: Sequence[PairMatches], hs: Sequence[np.ndarray | None], focal: float) -> np.ndarray:
    """Initial rotations along a spanning tree grown from keyframe 0 (strongest pairs first)."""
    rotations = np.full((count, 3, 3), np.nan)
    rotations[0] = np.eye(3)
    edges = sorted(
        ((len(p.xa), p, h) for p, h in zip(pairs, hs, strict=True) if h is not None),
        key=lambda e: (-e[0], e[1].a, e[1].b),
    )
    grown = True
    while grown:
        grown = False
        for _, pair, h in edges:
            known_a, known_b = not np.isnan(rotations[pair.a, 0, 0]), not np.isnan(rotations[pair.b, 0, 0])
            if known_a == known_b:
                continue
            r_ab = _rotation_from_homography(h, focal)  # camera a -> camera b
            if known_a:
                rotations[pair.b] = r_ab @ rotations[pair.a]
            else:
                rotations[pair.a] = r_ab.T @ rotations[pair.b]
            grown = True
            break
    return rotations


def _subsample(x: np.ndarray, limit: int) -> np.ndarray:
    if len(x) <= limit:
        return np.arange(len(x))
    return np.linspace(0, len(x) - 1, limit).round().astype(int)


def _skew(v: np.ndarray) -> np.ndarray:
    """(n, 3) vectors -> (n, 3, 3) cross-product matrices."""
    z = np.zeros(len(v))
    return np.stack(
        [np.stack([z, -v[:, 2], v[:, 1]], 1), np.stack([v[:, 2], z, -v[:, 0]], 1), np.stack([-v[:, 1], v[:, 0], z], 1)],
        1,
    )


def _project_jacobian(q: np.ndarray, focal: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of rays q (n, 3) and d(pixels)/dq (n, 2, 3)."""
    z = np.maximum(q[:, 2], 1e-6)
    px = focal * q[:, :2] / z[:, None]
    jac = np.zeros((len(q), 2, 3))
    jac[:, 0, 0] = jac[:, 1, 1] = focal / z
    jac[:, :, 2] = -px / z[:, None]
    return px, jac


def _transfer_terms(
    rot: np.ndarray, src: np.ndarray, dst: np.ndarray, x_src: np.ndarray, x_dst: np.ndarray, focal: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Residuals (n, 2) of x_dst ~ K R_dst R_src^T K^-1 x_src and their derivatives with respect to a
    rotation increment of the destination camera, of the source camera (R <- exp(d) R), and log focal."""
    m = np.einsum("nij,nkj->nik", rot[dst], rot[src])
    d = np.column_stack([x_src / focal, np.ones(len(x_src))])
    q = np.einsum("nij,nj->ni", m, d)
    px, jp = _project_jacobian(q, focal)
    j_dst = -np.einsum("nij,njk->nik", jp, _skew(q))
    j_src = np.einsum("nij,njk->nik", jp, np.einsum("nij,njk->nik", m, _skew(d)))
    dd = np.column_stack([-x_src / focal, np.zeros(len(x_src))])
    j_f = px + np.einsum("nij,nj->ni", jp, np.einsum("nij,nj->ni", m, dd))
    return px - x_dst, j_dst, j_src, j_f


def _refine(
    rotations: np.ndarray,
    free: Sequence[int],
    focal: float,
    refine_focal: bool,
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    xa: np.ndarray,
    xb: np.ndarray,
    *,
    iterations: int = 30,
    huber_px: float = 1.0,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Levenberg-Marquardt with Huber weights over the rotations of `free` keyframes (and log focal)."""
    column = np.full(len(rotations), -1)
    for n, k in enumerate(free):
        column[k] = 3 * n
    n_par = 3 * len(free) + (1 if refine_focal else 0)
    rots, f = rotations.copy(), focal
    lam = 1e-3

    def evaluate(rots: np.ndarray, f: float) -> tuple[np.ndarray, list]:
        fwd = _transfer_terms(rots, a_idx, b_idx, xa, xb, f)
        bwd = _transfer_terms(rots, b_idx, a_idx, xb, xa, f)
        return np.concatenate([fwd[0], bwd[0]]), [(fwd, b_idx, a_idx), (bwd, a_idx, b_idx)]

    def cost(res: np.ndarray) -> float:
        e = np.hypot(res[:, 0], res[:, 1])
        return float(np.where(e < huber_px, 0.5 * e * e, huber_px * (e - 0.5 * huber_px)).sum())

    res, terms = evaluate(rots, f)
    current = cost(res)
    for _ in range(iterations):
        e = np.hypot(res[:, 0], res[:, 1])
        w = np.where(e < huber_px, 1.0, huber_px / np.maximum(e, 1e-12))
        jtj = np.zeros((n_par, n_par))
        jtr = np.zeros(n_par)
        offset = 0
        for (r, j_dst, j_src, j_f), dst, src in terms:
            n = len(r)
            ww = w[offset : offset + n]
            offset += n
            blocks = [(column[dst], j_dst), (column[src], j_src)]
            if refine_focal:
                blocks.append((np.full(n, n_par - 1), j_f[:, :, None]))
            for ci, ji in blocks:
                oki = ci >= 0
                if not oki.any():
                    continue
                g = np.einsum("nij,ni->nj", ji[oki], r[oki] * ww[oki, None])
                for c in range(ji.shape[2]):
                    np.add.at(jtr, ci[oki] + c, g[:, c])
                for cj, jj in blocks:
                    ok = oki & (cj >= 0)
                    if not ok.any():
                        continue
                    h = np.einsum("nia,nib->nab", ji[ok] * ww[ok, None, None], jj[ok])
                    for x in range(ji.shape[2]):
                        for y in range(jj.shape[2]):
                            np.add.at(jtj, (ci[ok] + x, cj[ok] + y), h[:, x, y])
        improved = False
        for _ in range(8):
            step = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-9), -jtr)
            trial = rots.copy()
            for n, k in enumerate(free):
                trial[k] = Rotation.from_rotvec(step[3 * n : 3 * n + 3]).as_matrix() @ rots[k]
            f_trial = f * math.exp(step[-1]) if refine_focal else f
            res_t, terms_t = evaluate(trial, f_trial)
            trial_cost = cost(res_t)
            if trial_cost < current:
                rots, f, res, terms, current = trial, f_trial, res_t, terms_t, trial_cost
                lam = max(lam / 10, 1e-9)
                improved = True
                break
            lam *= 10
        if not improved or np.abs(step).max() < 1e-9:
            break
    return rots, f, res


def solve_rotations(
    count: int,
    pairs: Sequence[PairMatches],
    focal: float,
    *,
    refine_focal: bool,
) -> RotationSolution:
    """Keyframe rotations (and the focal length, when `refine_focal`) from pairwise matches."""
    hs = [p.h for p in pairs]
    init = _chain(count, pairs, hs, focal)
    known = {k for k in range(count) if not np.isnan(init[k, 0, 0])}
    used_h = [(p, h) for p, h in zip(pairs, hs, strict=True) if h is not None and p.a in known and p.b in known]
    used = [p for p, _ in used_h]
    used_hs = [h for _, h in used_h]
    if not used:
        return RotationSolution(focal, init, math.inf, math.inf, 0.0, 0.0)
    ia, ib, xa, xb = [], [], [], []
    for p in used:
        sel = _subsample(p.xa, MAX_MATCHES_PER_PAIR)
        ia.append(np.full(len(sel), p.a))
        ib.append(np.full(len(sel), p.b))
        xa.append(p.xa[sel])
        xb.append(p.xb[sel])
    start = init.copy()
    start[np.isnan(start[:, 0, 0])] = np.eye(3)
    free = sorted(known - {0})
    rots, f, res = _refine(
        start, free, focal, refine_focal, np.concatenate(ia), np.concatenate(ib), np.concatenate(xa), np.concatenate(xb)
    )
    for k in range(count):
        if k not in known:
            rots[k] = np.nan
    err = np.hypot(res[:, 0], res[:, 1])
    angles = [math.degrees(Rotation.from_matrix(rots[p.b] @ rots[p.a].T).magnitude()) for p in used]
    score = _pair_score(used, used_hs, f)
    off = min(_pair_score(used, used_hs, f * s) for s in (0.9, 1.1))
    return RotationSolution(
        f,
        rots,
        float(np.median(err)),
        float(np.percentile(err, 90)),
        max(angles, default=0.0),
        (off - score) / max(score, 1e-6),
    )


def epipolar_noise(pairs: Sequence[PairMatches]) -> float:
    """The matches' noise floor: 90th percentile of their Sampson distance (px) to a fundamental matrix
    fitted per pair (RANSAC). A fundamental matrix fits any rigid scene and any camera motion, so a rotation
    model whose errors are a few times this fits as well as anything can; one with parallax left over is far
    worse."""
    errors = []
    for pair in pairs:
        if len(pair.xa) < 8:
            continue
        result = pycolmap.estimate_fundamental_matrix(
            pair.xa, pair.xb, pycolmap.RANSACOptions(max_error=4.0, random_seed=0)
        )
        if result is None:
            continue
        f = np.asarray(result["F"], dtype=np.float64)
        pa = np.column_stack([pair.xa, np.ones(len(pair.xa))])
        pb = np.column_stack([pair.xb, np.ones(len(pair.xb))])
        fa, fb = pa @ f.T, pb @ f
        num = (pb * fa).sum(1) ** 2
        den = fa[:, 0] ** 2 + fa[:, 1] ** 2 + fb[:, 0] ** 2 + fb[:, 1] ** 2
        errors.append(np.sqrt(num / np.maximum(den, 1e-18)))
    if not errors:
        return math.nan
    return float(np.percentile(np.concatenate(errors), 90))


def register_rotation(
    focal: float, views: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], *, min_inliers: int
) -> tuple[np.ndarray, int] | None:
    """World-to-camera rotation of one frame from matches with posed keyframes:
    views = [(keyframe rotation, keyframe pixels (M, 2), this frame's pixels (M, 2)), ...], centred pixels.
    Returns (rotation, inlier count) or None when fewer than `min_inliers` matches agree."""
    rays, pix = [], []
    init = None
    for r_k, xk, xi in views:
        if len(xk) < 4:
            continue
        rays.append(np.column_stack([xk / focal, np.ones(len(xk))]) @ r_k)  # world directions (R_k^T d)
        pix.append(xi)
        if init is None and len(xk) >= 8:
            h = _homography(xk, xi)
            if h is not None:
                init = _rotation_from_homography(h, focal) @ r_k
    if not rays or init is None:
        return None
    world = np.concatenate(rays)
    target = np.concatenate(pix)

    def residuals(rv: np.ndarray) -> np.ndarray:
        cam = world @ Rotation.from_rotvec(rv).as_matrix().T
        proj = focal * cam[:, :2] / np.maximum(cam[:, 2:], 1e-6)
        return (proj - target).ravel()

    fit = least_squares(residuals, Rotation.from_matrix(init).as_rotvec(), loss="huber", f_scale=1.0, max_nfev=50)
    err = np.hypot(*fit.fun.reshape(-1, 2).T)
    inliers = int((err < 3.0).sum())
    if inliers < min_inliers:
        return None
    return Rotation.from_rotvec(fit.x).as_matrix(), inliers
