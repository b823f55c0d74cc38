"""Model layouts as frozen dataclasses, with no PyTorch: the transformer and the autoencoder.

Their modules (star.py, autoencoder.py) build from these; presets.py names combinations of them. Kept
apart from the modules so that choosing and describing a layout (the CLI, bundles, the runtime) never
needs PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Spatial downsampling factor (three stride-2 stages).
SPATIAL_STRIDE = 8


@dataclass(frozen=True)
class StarConfig:
    """Transformer layout. Defaults are the published InSpatio-World 1.3B layout."""

    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    #: 3D patch (frames, rows, columns) of the patch embedding.
    patch: tuple[int, int, int] = (1, 2, 2)
    latent_channels: int = 16
    #: Validity-mask channels per latent pixel (4 in the published layout: one per video frame a latent frame covers).
    mask_channels: int = 4
    #: Width of the text embedding fed to cross-attention; 0: no cross-attention at all.
    text_dim: int = 4096
    #: Text tokens (a fixed embedding; the bridge has no prompt).
    text_len: int = 512
    #: Sinusoidal timestep embedding width.
    freq_dim: int = 256
    eps: float = 1e-6
    rope_theta: float = 10000.0
    #: Latent frames per autoregressive block.
    block_frames: int = 3
    #: Latent grid the graphs are exported for.
    latent_height: int = 60
    latent_width: int = 104

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        pt, ph, pw = self.patch
        if self.block_frames % pt or self.latent_height % ph or self.latent_width % pw:
            raise ValueError(f"latent block {self.block_frames}x{self.latent_height}x{self.latent_width} "
                             f"is not divisible by the patch {self.patch}")  # fmt: skip
        if self.head_dim % 2 or self.head_dim < 6:
            raise ValueError(f"head_dim {self.head_dim} must be even and >= 6 for 3D rotary embeddings")

    @property
    def in_dim(self) -> int:
        return 2 * self.latent_channels + self.mask_channels

    @property
    def out_dim(self) -> int:
        return self.latent_channels

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (frames, rows, columns) of one block."""
        pt, ph, pw = self.patch
        return self.block_frames // pt, self.latent_height // ph, self.latent_width // pw

    @property
    def block_tokens(self) -> int:
        f, h, w = self.grid
        return f * h * w

    @property
    def context_tokens(self) -> int:
        """Cache length: reference block + previous block."""
        return 2 * self.block_tokens


#: Autoencoder families: our own tiny one (autoencoder.py) and the TAEHV layout (taehv.py).
AUTOENCODER_KINDS = ("tiny", "taehv")


@dataclass(frozen=True)
class AutoencoderConfig:
    latent_channels: int = 4
    #: Channels of the hidden convolutions (TAEHV: the encoder's width; its decoder is 4w, 2w, w, w wide).
    width: int = 32
    #: Video frames per latent frame: 1 or 4.
    temporal_stride: int = 1
    #: "tiny" (autoencoder.py: stateless per block) or "taehv" (taehv.py: the published `taew2_1` layout,
    #: causal, with memory carried from block to block).
    kind: str = "tiny"

    def __post_init__(self) -> None:
        if self.temporal_stride not in (1, 4):
            raise ValueError(f"temporal_stride must be 1 or 4, got {self.temporal_stride}")
        if self.kind not in AUTOENCODER_KINDS:
            raise ValueError(f"autoencoder kind must be one of {', '.join(AUTOENCODER_KINDS)}, got {self.kind!r}")
        if self.kind == "taehv" and self.temporal_stride != 4:
            raise ValueError("the TAEHV layout has a temporal stride of 4")


#: The published `taew2_1` (TAEHV for the Wan2.1 latent space): 16 latent channels, 64-wide encoder.
TAEW2_1 = AutoencoderConfig(latent_channels=16, width=64, temporal_stride=4, kind="taehv")
