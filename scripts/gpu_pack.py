"""Pack what a lent GPU machine lacks into parts small enough to carry one per device call.

    python scripts/gpu_pack.py [--python 3.12] [--arch 90] [--part-mib 36] [--out .gpu]

The GPU machines lent to this project have PyTorch and CUDA 13 but not ONNX Runtime's CUDA build, nor PyAV,
pyzmq, websockets and the gRPC extras; nothing can be downloaded there, and one device call carries at most
64 MiB with the working tree (about 25 MB). The onnxruntime-gpu wheel alone is 255 MB, 218 MB of it the CUDA
kernels of its CUDA provider for six GPU generations (sm_75 ... sm_120). So:

1. the wheels are downloaded here for the device's Python (`pip download`, manylinux, `--python`, default 3.12:
   what the device image runs);
2. they are unpacked into one site folder (what `pip install --target` makes of them; no scripts needed);
   TensorRT's provider library is left out (no TensorRT there), and in the CUDA provider the kernels of every
   other GPU generation than `--arch` (90: H100/H200) are zeroed in place -- the fat binary keeps its layout and
   headers, so the CUDA driver still finds the sm_90 images it loads, and the zeroed ones compress to nothing;
3. the folder is written as one tar.xz (Python's own tarfile/lzma, which the device has) with its SHA-256, and
   split into `--part-mib` pieces under OUT/part-1, OUT/part-2, ... (one device call carries one folder).

On the device, scripts/gpu_device.sh stashes each part in /tmp, checks the whole against the SHA-256, unpacks it
and puts it first on PYTHONPATH. README "When a GPU is lent" gives the calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: What the device lacks for `bench/bench_gpu.py` and `scripts/train_gpu.sh` (KINDS.md lists what it has).
PACKAGES = ("onnxruntime-gpu", "av", "pyzmq", "websockets", "grpcio-health-checking", "grpcio-reflection")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64")  # fmt: skip
FATBIN_MAGIC = 0xBA55ED50


def download(folder: Path, python: str, ort_version: str) -> list[Path]:
    """The wheels of PACKAGES for CPython `python` on x86-64 Linux, into `folder` (kept: a second run reuses them)."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [f"onnxruntime-gpu=={ort_version}" if p == "onnxruntime-gpu" else p for p in PACKAGES]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           python, "--implementation", "cp", "-d", str(folder), *[a for p in PLATFORMS for a in ("--platform", p)],
           *wanted]  # fmt: skip
    subprocess.run(cmd, check=True)
    wheels = sorted(folder.glob("*.whl"))
    for package in PACKAGES:
        stem = package.replace("-", "_").lower()
        if not any(w.name.lower().startswith(stem + "-") for w in wheels):
            sys.exit(f"gpu_pack: pip found no wheel of {package} for Python {python}")
    return wheels


def prune_fatbin(path: Path, keep_arch: int) -> tuple[int, int]:
    """Zero, in place, the payload of every CUDA image in `path`'s .nv_fatbin section whose SM architecture is not
    `keep_arch`; returns (bytes zeroed, bytes kept). The section's size and every header stay as they were."""
    out = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\.nv_fatbin\s+PROGBITS\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", out)
    if not m:
        return 0, 0
    data = bytearray(path.read_bytes())
    zeroed, kept = prune_fatbin_section(data, int(m.group(1), 16), int(m.group(2), 16), keep_arch)
    path.write_bytes(bytes(data))
    return zeroed, kept


def prune_fatbin_section(data: bytearray, start: int, size: int, keep_arch: int) -> tuple[int, int]:
    """The work of `prune_fatbin` on the section at data[start:start + size]: a run of fat-binary containers
    (8-byte aligned, each a header -- magic, version, header size, body size -- and entries: kind u16, version u16,
    header size u32, payload size u64, ..., SM architecture u32 at byte 28 -- each followed by its payload)."""
    zeroed = kept = 0
    p = 0
    while p + 16 <= size:
        magic, _version, header, body = struct.unpack_from("<IHHQ", data, start + p)
        if magic != FATBIN_MAGIC:
            p += 8
            continue
        q, end = p + header, p + header + body
        while q < end:
            _kind, _ver, entry_header, payload = struct.unpack_from("<HHIQ", data, start + q)
            arch = struct.unpack_from("<I", data, start + q + 28)[0]
            at = start + q + entry_header
            if arch == keep_arch:
                kept += payload
            else:
                data[at : at + payload] = bytes(payload)
                zeroed += payload
            q += entry_header + payload
        p = end
    return zeroed, kept


def build_site(wheels: list[Path], site: Path, arch: int) -> dict:
    """Unpack the wheels into `site`; drop TensorRT's provider; prune the CUDA provider to `arch`."""
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(site)
    capi = site / "onnxruntime" / "capi"
    for lib in capi.glob("libonnxruntime_providers_tensorrt*"):
        lib.unlink()
    cuda = capi / "libonnxruntime_providers_cuda.so"
    zeroed, kept = prune_fatbin(cuda, arch)
    if not kept:
        sys.exit(f"gpu_pack: the CUDA provider has no kernels for sm_{arch}: nothing to run there")
    for so in site.rglob("*.so*"):  # zip extraction drops the executable bit
        so.chmod(0o755)
    return {"cuda_kernels_zeroed_mb": round(zeroed / 1e6, 1), "cuda_kernels_kept_mb": round(kept / 1e6, 1)}


def pack(site: Path, out: Path, part_mib: float) -> dict:
    """site -> OUT/site.tar.xz split into OUT/part-K/site.tar.xz.K; returns the manifest (also OUT/manifest.json)."""
    archive = out / "site.tar.xz"
    with tarfile.open(archive, "w:xz", preset=6) as tar:
        tar.add(site, arcname="site")
    blob = archive.read_bytes()
    archive.unlink()
    step = int(part_mib * 2**20)
    parts = []
    for k, offset in enumerate(range(0, len(blob), step), start=1):
        folder = out / f"part-{k}"
        folder.mkdir()
        piece = folder / f"site.tar.xz.{k}"
        piece.write_bytes(blob[offset : offset + step])
        parts.append(str(folder.relative_to(out.parent)))
    manifest = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob), "parts": parts}
    for name in parts:  # each part carries the manifest, so the last call can check the whole
        (out.parent / name / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def tree_bytes() -> int:
    """What a device call sends besides a carried part: tracked and untracked-not-ignored files."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")  # fmt: skip
    return sum((REPO_ROOT / n.decode()).stat().st_size for n in names if n and (REPO_ROOT / n.decode()).is_file())


def main(argv: list[str] | None = None) -> int:
    import onnxruntime

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default="3.12", help="the device's Python (major.minor)")
    p.add_argument("--arch", type=int, default=90, help="SM architecture kept in the CUDA provider (90: H100/H200)")
    p.add_argument("--part-mib", type=float, default=36.0)
    p.add_argument("--onnxruntime", default=onnxruntime.__version__, help="onnxruntime-gpu version")
    p.add_argument("--out", type=Path, default=REPO_ROOT / ".gpu", help="must be ignored by git (it is: /.gpu/)")
    a = p.parse_args(argv)
    out = a.out.resolve()
    cache = out.parent / (out.name + "-wheels")
    wheels = download(cache, a.python, a.onnxruntime)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    site = out / "site"
    pruned = build_site(wheels, site, a.arch)
    manifest = pack(site, out, a.part_mib)
    shutil.rmtree(site)
    tree = tree_bytes()
    limit = 64 * 2**20
    print(f"wheels: {', '.join(w.name for w in wheels)}")
    print(f"CUDA provider: {pruned['cuda_kernels_zeroed_mb']} MB of kernels for other GPUs zeroed, "
          f"{pruned['cuda_kernels_kept_mb']} MB for sm_{a.arch} kept")  # fmt: skip
    print(f"site.tar.xz {manifest['bytes'] / 2**20:.1f} MiB in {len(manifest['parts'])} parts; working tree "
          f"{tree / 2**20:.1f} MiB + a part <= {tree / 2**20 + a.part_mib:.1f} MiB (limit 64)")  # fmt: skip
    if tree + a.part_mib * 2**20 > limit:
        print("gpu_pack: a part with the working tree is over 64 MiB: use a smaller --part-mib", file=sys.stderr)
        return 1
    for k, folder in enumerate(manifest["parts"], start=1):
        last = k == len(manifest["parts"])
        what = "bash scripts/gpu_device.sh bench   (or: train)" if last else "bash scripts/gpu_device.sh stash"
        print(f'  device call {k}: carry ["{folder}"], command: {what}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
