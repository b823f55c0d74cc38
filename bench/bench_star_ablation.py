"""STAR ablations that need no network training: what the condition and the autoencoder leave the network to do.

    python bench/bench_star_ablation.py [--samples 8] [--checkpoint runs/star-world/autoencoder.pt] [--out DIR]

On held-out procedural samples (small-move novel paths, as bench_quality's default; seeds and styles training
never sees), per condition (``reference``: the same-time reference frame splatted, star-tiny's; ``layered``: the
explicit generator's full render with the fused world and the session memory, star-world's):

* **cover**: the fraction of pixels the condition's mask covers (what the network need not invent);
* **fill PSNR in holes**: push-pull fill against ground truth in the pixels the condition leaves uncovered
  (8-bit RGB, pooled over the sample's frames, then the mean over samples);
* **autoencoder round trip in holes**: the same pixels after encode + decode of the filled render, per
  autoencoder (the shipped star-tiny's 4 channels; a trained star-world checkpoint's 8 when given): the output
  of a residual network that adds nothing, i.e. the floor it starts from;
* **autoencoder ceiling**: encode + decode of the ground truth, PSNR over all pixels (the best any latent
  model with that autoencoder can do).

Prints a table and writes star-ablation-<host>.json (machine, versions) to --out.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir  # noqa: E402
from starbridge.scenes.procedural.samples import iter_samples  # noqa: E402


def psnr_in(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float | None:
    """PSNR (dB) of uint8 (N, H, W, 3) images over the pixels `where` (N, H, W); None when there are none."""
    if not where.any():
        return None
    d = a.astype(np.float64)[where] - b.astype(np.float64)[where]
    mse = float(np.mean(d * d))
    return 100.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def autoencoders(checkpoint: Path | None) -> dict[str, Any]:
    """name -> function uint8 (N, H, W, 3) -> uint8 (N, H, W, 3) round trip."""
    import torch

    from starbridge.model.autoencoder import TinyAutoencoder
    from starbridge.model.presets import get_preset
    from starbridge.train.warmstart import bundle_autoencoder_weights, widen_into

    def wrap(ae: TinyAutoencoder):
        ae = ae.eval()

        def trip(frames: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
                return (ae(x).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)

        return trip

    tiny = TinyAutoencoder(get_preset("star-tiny").autoencoder)
    widen_into(tiny, bundle_autoencoder_weights("star-tiny"))
    out = {"star-tiny (4 ch, shipped)": wrap(tiny)}
    if checkpoint is not None:
        from starbridge.model.presets import Preset
        from starbridge.train.trainer import load_checkpoint

        state = load_checkpoint(checkpoint)
        if state is None:
            raise SystemExit(f"no checkpoint at {checkpoint}")
        preset = Preset.from_json(state["preset"])
        ae = TinyAutoencoder(preset.autoencoder)
        ae.load_state_dict(state["modules"]["autoencoder"])
        label = f"{preset.name} ({preset.autoencoder.latent_channels} ch, {state['step']} steps)"
        out[label] = wrap(ae)
    return out


def run(samples: int, checkpoint: Path | None, out: Path) -> dict[str, Any]:
    from starbridge.train.data import layered_render

    trips = autoencoders(checkpoint)
    rows: dict[str, list[dict[str, Any]]] = {"reference": [], "layered": []}
    ceiling: dict[str, list[float]] = {name: [] for name in trips}
    with tempfile.TemporaryDirectory(prefix="starbridge-ablation-") as tmp:
        for k, sample in enumerate(iter_samples("heldout", samples)):
            print(f"  sample {k + 1}/{samples}: {sample.name}", flush=True)
            work = Path(tmp) / f"s{k}"
            work.mkdir()
            layered, layered_masks = layered_render(sample, work)
            conditions = {"reference": (sample.filled, sample.masks), "layered": (layered, layered_masks)}
            for name, (filled, masks) in conditions.items():
                holes = ~masks
                row: dict[str, Any] = {"cover": float(masks.mean()), "fill": psnr_in(filled, sample.gt_frames, holes)}
                for ae_name, trip in trips.items():
                    row[ae_name] = psnr_in(trip(filled), sample.gt_frames, holes)
                rows[name].append(row)
            everywhere = np.ones(sample.gt_frames.shape[:3], bool)
            for ae_name, trip in trips.items():
                ceiling[ae_name].append(psnr_in(trip(sample.gt_frames), sample.gt_frames, everywhere) or 0.0)

    def mean(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else None

    summary = {name: {key: mean([r[key] for r in rs]) for key in rs[0]} for name, rs in rows.items()}
    ceilings = {name: mean(v) for name, v in ceiling.items()}
    cols = ["cover", "fill", *trips]
    print()
    print("| condition | " + " | ".join(c if c != "fill" else "fill PSNR in holes" for c in cols) + " |")
    print("| --- " * (len(cols) + 1) + "|")
    for name, s in summary.items():
        cells = [f"{s['cover']:.3f}"] + [f"{s[c]:.2f} dB" if s[c] is not None else "-" for c in cols[1:]]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for name, v in ceilings.items():
        print(f"autoencoder ceiling (ground truth round trip, all pixels) {name}: {v:.2f} dB")
    host = host_tag()
    report = {
        "benchmark": "star-ablation",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {"numpy": np.__version__},
        "settings": {"split": "heldout", "samples": samples, "checkpoint": str(checkpoint) if checkpoint else None},
        "conditions": summary,
        "per_sample": rows,
        "autoencoder_ceiling_db": ceilings,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"star-ablation-{host}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=8, help="held-out samples")
    p.add_argument("--checkpoint", type=Path, default=None, help="a trained autoencoder.pt (e.g. star-world's)")
    add_out_argument(p)
    a = p.parse_args(argv)
    run(a.samples, a.checkpoint, out_dir(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
