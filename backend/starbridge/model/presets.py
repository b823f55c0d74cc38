"""Named model presets: transformer layout + autoencoder + resolution + sampler schedule.

- ``star-tiny``: the default backdrop model, sized for real time on two laptop CPU cores.
- ``inspatio-1.3b``: the layout of the published InSpatio-World 1.3B model (Wan2.1-T2V-1.3B transformer,
  480x832, 3 latent frames per block, each latent frame covering 4 video frames) with a tiny video
  autoencoder of the same latent layout.
- ``star-world``: star-tiny's transformer conditioned on the explicit generator's full layered render (same-time
  frame, fused world, session memory; holes push-pull filled), predicting a residual over that render's latent,
  with an 8-channel autoencoder (the 4-channel one caps reconstruction near 25.5 dB).
- ``*-test``: reduced width and depth of each layout (same module names and code paths) for CI.

`condition` says what the STAR condition is built from (runtime/star.py): ``"reference"`` (the same-time
reference frame splatted, holes black) or ``"layered"`` (runtime/explicit.py's layered render, holes filled).
With `residual`, the network's clean latents are added to the condition's render latent (it predicts what the
explicit render lacks); both are written into a bundle's model.json with the preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import InvalidArgument
from .config import SPATIAL_STRIDE, AutoencoderConfig, StarConfig

#: What a STAR condition can be rendered from.
CONDITIONS = ("reference", "layered")


@dataclass(frozen=True)
class Preset:
    name: str
    star: StarConfig
    autoencoder: AutoencoderConfig
    #: Video frame size the graphs are exported for.
    width: int
    height: int
    #: Few-step sampler (runtime/sampler.py).
    steps: tuple[int, ...] = (1000, 750, 500, 250)
    shift: float = 5.0
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False)
    #: What the condition is rendered from: "reference" or "layered" (see the module docstring).
    condition: str = "reference"
    #: The network predicts latents relative to the condition's render latent.
    residual: bool = False

    def __post_init__(self) -> None:
        s, a = self.star, self.autoencoder
        if (s.latent_height * SPATIAL_STRIDE, s.latent_width * SPATIAL_STRIDE) != (self.height, self.width):
            raise ValueError(f"{self.name}: latent grid {s.latent_height}x{s.latent_width} does not match "
                             f"{self.width}x{self.height} / {SPATIAL_STRIDE}")  # fmt: skip
        if s.latent_channels != a.latent_channels:
            raise ValueError(f"{self.name}: transformer and autoencoder latent channels differ")
        if s.mask_channels != a.temporal_stride:
            raise ValueError(f"{self.name}: mask_channels must equal the autoencoder's temporal stride")
        if self.condition not in CONDITIONS:
            raise ValueError(f"{self.name}: condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}")

    @property
    def frames_per_block(self) -> int:
        """Video frames generated per autoregressive block."""
        return self.star.block_frames * self.autoencoder.temporal_stride

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "star": asdict(self.star),
            "autoencoder": asdict(self.autoencoder),
            "width": self.width,
            "height": self.height,
            "steps": list(self.steps),
            "shift": self.shift,
            "description": self.description,
            "condition": self.condition,
            "residual": self.residual,
        }

    @classmethod
    def from_json(cls, doc: dict) -> Preset:
        star = dict(doc["star"])
        star["patch"] = tuple(star["patch"])
        return cls(
            name=doc["name"],
            star=StarConfig(**star),
            autoencoder=AutoencoderConfig(**doc["autoencoder"]),
            width=int(doc["width"]),
            height=int(doc["height"]),
            steps=tuple(doc["steps"]),
            shift=float(doc["shift"]),
            description=doc.get("description", ""),
            condition=doc.get("condition", "reference"),
            residual=bool(doc.get("residual", False)),
        )


def _tiny(
    name: str, dim: int, layers: int, heads: int, description: str, *, latent: int = 4, world: bool = False
) -> Preset:
    return Preset(
        name=name,
        star=StarConfig(
            dim=dim,
            ffn_dim=3 * dim,
            num_heads=heads,
            num_layers=layers,
            latent_channels=latent,
            mask_channels=1,
            text_dim=0,
            block_frames=2,
            latent_height=18,
            latent_width=32,
        ),  # fmt: skip
        autoencoder=AutoencoderConfig(latent_channels=latent, width=32, temporal_stride=1),
        width=256,
        height=144,
        description=description,
        condition="layered" if world else "reference",
        residual=world,
    )


def _inspatio(name: str, star: StarConfig, ae_width: int, width: int, height: int, description: str) -> Preset:
    return Preset(
        name=name,
        star=star,
        autoencoder=AutoencoderConfig(latent_channels=16, width=ae_width, temporal_stride=4),
        width=width,
        height=height,
        description=description,
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _tiny("star-tiny", 128, 3, 4, "default backdrop model: 256x144, 2 frames per block, CPU real time"),
        _tiny("star-tiny-test", 32, 2, 2, "reduced star-tiny for tests"),
        _tiny(
            "star-world",
            128,
            3,
            4,
            "star-tiny on the layered explicit render (fused world, memory), residual, 8 latent channels: 256x144",
            latent=8,
            world=True,
        ),
        _tiny("star-world-test", 32, 2, 2, "reduced star-world for tests", latent=8, world=True),
        _inspatio("inspatio-1.3b", StarConfig(), 64, 832, 480, "published InSpatio-World 1.3B layout, 480x832"),
        _inspatio(
            "inspatio-1.3b-test",
            StarConfig(
                dim=96,
                ffn_dim=160,
                num_heads=2,
                num_layers=2,
                text_dim=64,
                text_len=8,
                latent_height=8,
                latent_width=12,
            ),  # fmt: skip
            16,
            96,
            64,
            "reduced inspatio-1.3b layout (same module names) for tests",
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidArgument(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}", field="preset") from None
