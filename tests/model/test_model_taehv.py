"""The TAEHV-layout autoencoder (the published `taew2_1`, Wan2.1 latents): strict loading against the written-out
list of published names and shapes, causal streaming across blocks, and a converted bundle that streams its
memory through ONNX Runtime exactly as PyTorch does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from starbridge.cli import main  # noqa: E402
from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.model.config import TAEW2_1, AutoencoderConfig  # noqa: E402
from starbridge.model.convert import CheckpointError, autoencoder_layout, expected_layout, load_autoencoder  # noqa: E402
from starbridge.model.pipeline import TorchEngine  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.model.star import StarModel  # noqa: E402
from starbridge.model.taehv import STARTUP_FRAMES, StreamDecoderGraph, StreamEncoderGraph, Taehv  # noqa: E402
from starbridge.runtime.bundle import read_model  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.runtime.star import StarGenerator, StarSession  # noqa: E402
from starbridge.runtime.stream import GraphMemory, memory_inputs  # noqa: E402
from starbridge.scenes.store import SceneStore  # noqa: E402

PRESET = get_preset("inspatio-1.3b-test")  # 96x64 video, 16 latent channels, 4 frames per latent, 3 per block
FIXTURE = Path(__file__).parent / "fixtures" / "taew2_1_layout.json"


def published_layout() -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in json.loads(FIXTURE.read_text())["shapes"].items()}


def unit_scale_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights for a layout, scaled (He) so activations stay unit-size through the 23 decoder layers."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        state[key] = torch.randn(shape, generator=g) * ((2.0 / fan_in) ** 0.5 if len(shape) > 1 else 0.01)
    return state


def published_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict built from the written-out list alone (the published file's names and shapes)."""
    return unit_scale_state(published_layout(), seed)


@pytest.fixture(scope="module")
def taew(tmp_path_factory) -> tuple[Path, Taehv]:
    path = tmp_path_factory.mktemp("tae") / "taew2_1.safetensors"
    safetensors_torch.save_file(published_state(), str(path))
    ae, source = load_autoencoder(path, PRESET)
    assert isinstance(ae, Taehv) and source == "taehv:taew2_1.safetensors"
    return path, ae.eval()


def test_module_layout_is_the_published_list():
    want = published_layout()
    assert len(want) == 128 and sum(k.endswith(".bias") for k in want) == 58
    assert autoencoder_layout(TAEW2_1) == want


def test_published_file_loads_strictly_from_safetensors_and_pth(taew, tmp_path: Path):
    path, ae = taew
    state = published_state()
    for key in ("encoder.0.weight", "encoder.12.conv.weight", "decoder.7.conv.weight", "decoder.17.conv.4.bias"):
        assert torch.equal(ae.state_dict()[key], state[key])
    pth = tmp_path / "taew2_1.pth"  # the published file also comes as a PyTorch state dict
    torch.save(state, pth)
    ae2, _ = load_autoencoder(pth, PRESET)
    assert torch.equal(ae2.state_dict()["decoder.22.weight"], state["decoder.22.weight"])


def test_wrong_files_name_every_bad_key(tmp_path: Path):
    state = published_state()
    del state["decoder.15.conv.2.weight"]
    state["decoder.23.weight"] = torch.zeros(3)
    state["encoder.2.conv.weight"] = torch.zeros(64, 64, 1, 1)  # a stride-1 pool where taew2_1 pools 2 frames
    path = tmp_path / "bad.safetensors"
    safetensors_torch.save_file(state, str(path))
    with pytest.raises(CheckpointError) as err:
        load_autoencoder(path, PRESET)
    msg = err.value.message
    assert "does not fit the TAEHV (taew2_1) layout" in msg
    assert "1 missing: decoder.15.conv.2.weight" in msg
    assert "1 unexpected: decoder.23.weight" in msg
    assert "1 mis-shaped: encoder.2.conv.weight (64, 64, 1, 1) (want (64, 128, 1, 1))" in msg
    good = tmp_path / "good.safetensors"
    safetensors_torch.save_file(published_state(), str(good))
    with pytest.raises(CheckpointError, match="TAEHV layout .* preset star-tiny-test has 4 latent channels"):
        load_autoencoder(good, get_preset("star-tiny-test"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_autoencoder(junk, PRESET)


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float32 summation order (relative to the tensor's scale)."""
    return bool((a - b).abs().max() <= 1e-5 * b.abs().max().clamp(min=1.0))


def test_streaming_blocks_equal_the_whole_stream_and_are_causal():
    torch.manual_seed(0)  # the published layout at a quarter of its width: the same module sequence, 16x cheaper
    ae = Taehv(AutoencoderConfig(latent_channels=16, width=16, temporal_stride=4, kind="taehv")).eval()
    ae.load_state_dict(unit_scale_state({k: tuple(v.shape) for k, v in ae.state_dict().items()}))
    g = torch.Generator().manual_seed(3)
    frames = torch.rand(24, 3, PRESET.height, PRESET.width, generator=g)
    with torch.no_grad():
        whole, _ = ae.encode_stream(frames)
        assert whole.shape == (6, 16, PRESET.height // 8, PRESET.width // 8)
        for latents_per_block in (1, 3):  # one latent at a time is TAEHV's sequential (frame-causal) order
            memory, parts = None, []
            for i in range(0, 24, 4 * latents_per_block):
                part, memory = ae.encode_stream(frames[i : i + 4 * latents_per_block], memory)
                parts.append(part)
            assert close(torch.cat(parts), whole)
        # causal: changing the last 4 frames leaves every earlier latent as it was
        changed = frames.clone()
        changed[20:] = 1 - changed[20:]
        other, _ = ae.encode_stream(changed)
        assert torch.equal(other[:5], whole[:5]) and not torch.allclose(other[5], whole[5])

        decoded, _ = ae.decode_stream(whole)
        assert decoded.shape == (24, 3, PRESET.height, PRESET.width)
        memory, parts = None, []
        for i in range(0, 6, 3):
            part, memory = ae.decode_stream(whole[i : i + 3], memory)
            parts.append(part)
        assert close(torch.cat(parts), decoded)
        fresh, _ = ae.decode_stream(whole[3:])  # without the memory the second block comes out differently
        assert (fresh - decoded[12:]).abs().max() > 1e-3


def _graph_inputs(session: ort.InferenceSession) -> list[str]:
    return [i.name for i in session.get_inputs()]


@pytest.fixture(scope="module")
def bundle(taew, tmp_path_factory):
    """`model convert` with the published checkpoint layout + TAEHV + a text embedding."""
    tae_path, _ = taew
    tmp = tmp_path_factory.mktemp("conv")
    g = torch.Generator().manual_seed(5)
    ckpt = tmp / "inspatio.safetensors"
    star_state = {f"model.{k}": torch.randn(s, generator=g) * 0.02 for k, s in expected_layout(PRESET).items()}
    safetensors_torch.save_file(star_state, str(ckpt))
    text = tmp / "caption.npy"
    np.save(text, np.random.default_rng(0).standard_normal((5, PRESET.star.text_dim)).astype(np.float32))
    out = tmp / "bundle"
    assert main(["model", "convert", str(ckpt), "--preset", PRESET.name, "--out", str(out),
                 "--autoencoder", str(tae_path), "--text-embedding", str(text)]) == 0  # fmt: skip
    model = StarModel(PRESET.star)
    model.load_state_dict({k[len("model.") :]: v for k, v in star_state.items()})
    return out, model.eval()


def test_converted_bundle_records_taehv_and_the_published_conventions(bundle, capsys):
    path, _ = bundle
    assert main(["model", "info", str(path)]) == 0 and "KV cache" in capsys.readouterr().out
    info = read_model(path)
    assert (info.autoencoder, info.mask_convention, info.startup_frames) == ("taehv", "wan", STARTUP_FRAMES)
    assert info.doc["preset"]["autoencoder"]["kind"] == "taehv"
    assert "taehv:taew2_1.safetensors" in info.weights and "caption.npy" in info.weights
    text = np.load(path / "text.npy")
    assert text.shape == (1, PRESET.star.text_len, PRESET.star.text_dim)
    assert np.array_equal(text[0, :5], np.load(path.parent / "caption.npy"))
    assert not text[0, 5:].any()  # padded with zeros past the caption, as Wan pads its umt5 output


def test_onnx_memory_crosses_blocks_as_in_pytorch(bundle, taew):
    """Two blocks through the exported graphs with the memory carried by GraphMemory (IO binding) equal the
    PyTorch stream; a fresh GraphMemory is a fresh stream."""
    path, _ = bundle
    _, ae = taew
    info = read_model(path)
    enc = ort.InferenceSession(str(info.graph("encoder")), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(info.graph("decoder")), providers=["CPUExecutionProvider"])
    assert _graph_inputs(enc)[0] == "frames" and len(memory_inputs(enc)) == 9
    assert _graph_inputs(dec)[0] == "latents" and len(memory_inputs(dec)) == 9
    assert memory_inputs(dec)["memory_3"][0] == (1, 256, PRESET.height // 8, PRESET.width // 8)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 12, PRESET.height, PRESET.width, 3), dtype=np.uint8)
    enc_graph, dec_graph = StreamEncoderGraph(ae), StreamDecoderGraph(ae)
    enc_mem, dec_mem = GraphMemory(enc), GraphMemory(dec)
    t_enc = list(ae.zero_memory("encoder", PRESET.height, PRESET.width))
    t_dec = list(ae.zero_memory("decoder", PRESET.height, PRESET.width))
    for block in range(2):
        got = enc_mem.run({"frames": frames[block]})
        with torch.no_grad():
            want, *t_enc = enc_graph(torch.from_numpy(frames[block]), *t_enc)
        assert close(torch.from_numpy(got), want), block
        got_frames = dec_mem.run({"latents": got})
        with torch.no_grad():
            want_frames, *t_dec = dec_graph(want, *t_dec)
        assert got_frames.shape == (12, PRESET.height, PRESET.width, 4)
        # two runtimes' kernels (MLAS, ATen; they differ by CPU: AMD EPYC 1 level, Intel Xeon 2 at one pixel of
        # 295k) round a few values on either side of a level: within 2 levels, and nearly all within 1
        diff = np.abs(got_frames.astype(int) - want_frames.numpy().astype(int))
        assert diff.max() <= 2 and (diff > 1).mean() < 1e-4, (block, diff.max(), (diff > 1).sum())
    enc_mem.reset()
    again = enc_mem.run({"frames": frames[1]})
    fresh = GraphMemory(enc).run({"frames": frames[1]})
    assert np.array_equal(again, fresh) and np.abs(again - got).max() > 1e-3


def test_whole_blocks_stream_in_the_runtime_as_in_pytorch(bundle, taew, demo_store):
    path, model = bundle
    _, ae = taew
    scene = SceneStore(demo_store).get("demo")
    generator = StarGenerator(path, prefer_cuda=False, int8=False)  # the float32 graphs: parity to rounding
    assert generator.graphs.streaming == ("encoder", "decoder")
    intr = Intrinsics.from_fov(60, PRESET.width, PRESET.height)
    c2w = np.eye(4)
    c2w[0, 3] = 0.2
    requests = [FrameRequest(c2w, intr, i / 24) for i in range(PRESET.frames_per_block)]
    text = np.load(path / "text.npy")
    ours = StarSession(generator, scene, seed=7)
    theirs = StarSession(generator, scene, seed=7, engine=TorchEngine(model, ae, text=text))
    firsts = []
    for block in range(3):
        if block == 2:  # a seek: a new stream for the masks and the autoencoder memory on both engines
            ours.reset()
            theirs.reset()
        a, b = np.stack(ours.generate_block(requests)), np.stack(theirs.generate_block(requests))
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2, block
        assert np.abs(ours.prev - theirs.prev).max() < 1e-3
        firsts.append(a)
        if block != 1:  # stream start: the decoder's 3 startup frames show the first real frame
            assert all(np.array_equal(a[i], a[STARTUP_FRAMES]) for i in range(STARTUP_FRAMES))
    assert not np.array_equal(firsts[1][0], firsts[1][STARTUP_FRAMES])


def test_an_engine_given_back_mid_stream_makes_what_a_fresh_one_makes(bundle, demo_store):
    """Sessions share block engines (StarGenerator.take_engine): one closed mid-stream, its autoencoders'
    memory and KV cache full of its blocks, serves the next session exactly as a new engine would; the pool
    keeps at most IDLE_ENGINES, and a session closed twice gives its engine back once."""
    from starbridge.runtime.star import IDLE_ENGINES

    path, _ = bundle
    scene = SceneStore(demo_store).get("demo")
    generator = StarGenerator(path, prefer_cuda=False, int8=False)
    intr = Intrinsics.from_fov(60, PRESET.width, PRESET.height)
    c2w = np.eye(4)
    c2w[0, 3] = 0.2
    requests = [FrameRequest(c2w, intr, i / 24) for i in range(PRESET.frames_per_block)]
    used = StarSession(generator, scene, seed=1)
    for _ in range(2):
        used.generate_block(requests)
    engine = used.engine
    used.close()
    used.close()
    again = StarSession(generator, scene, seed=7)
    assert again.engine is engine  # the pooled one, not a new one
    fresh = StarSession(generator, scene, seed=7)
    assert fresh.engine is not engine  # (the pool held one; now empty: a new engine)
    for block in range(2):
        a, b = np.stack(again.generate_block(requests)), np.stack(fresh.generate_block(requests))
        assert np.array_equal(a, b), block
    sessions = [again, fresh, *(StarSession(generator, scene) for _ in range(IDLE_ENGINES))]
    for session in sessions:
        session.close()
    given = {id(s.engine) for s in sessions}
    taken = [StarSession(generator, scene).engine for _ in range(IDLE_ENGINES + 1)]
    assert sum(id(e) in given for e in taken) == IDLE_ENGINES  # the rest were dropped: the last one is new
    assert id(taken[-1]) not in given
