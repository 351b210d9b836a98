"""The blend settings, one value for every paste-back (see the package docstring)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..core.choices import BLEND_MODES, BLEND_REGIONS, COLOR_MATCH, CROP_EDGES
from ..core.errors import TalkingHeadError

MODES = BLEND_MODES
REGIONS = BLEND_REGIONS


@dataclass(frozen=True)
class BlendSpec:
    """How rendered crops go back into the frames.

    mode: a key of MODES (the render's weight inside the region); alpha: that weight for
    mode "custom". region: a key of REGIONS. feather: frame pixels of soft edge (None =
    automatic: the official edge). color_match: "off", "rgb" or "lab". crop_edge: the
    official template of region "crop" ("liveportrait" 16 px, "ditto" 26 px).
    """

    mode: str = "replace"
    alpha: Optional[float] = None
    region: str = "crop"
    feather: Optional[float] = None
    color_match: str = "off"
    crop_edge: str = "liveportrait"

    def __post_init__(self):
        choices = (("mode", self.mode, tuple(MODES)), ("region", self.region, REGIONS),
                   ("color_match", self.color_match, COLOR_MATCH),
                   ("crop_edge", self.crop_edge, CROP_EDGES))
        for name, value, allowed in choices:
            if value not in allowed:
                raise TalkingHeadError(f"unknown blend {name} {value!r}; choose one of "
                                       f"{', '.join(allowed)}")
        if self.feather is not None and not (math.isfinite(self.feather) and self.feather >= 0):
            raise TalkingHeadError(f"feather must be 0 or more pixels, got {self.feather}")
        self.weight  # validates alpha

    @property
    def bare_template(self) -> Optional[str]:
        """The official crop template when the mask is that template alone (region
        "crop" without feather) times ``weight``; else None."""
        return self.crop_edge if self.region == "crop" and not self.feather else None

    @property
    def weight(self) -> float:
        """The render's weight at the centre of the region."""
        if MODES[self.mode] is not None:
            return MODES[self.mode]
        if self.alpha is None or not 0.0 <= float(self.alpha) <= 1.0:
            raise TalkingHeadError(f"blend mode 'custom' needs an alpha between 0 and 1, "
                                   f"got {self.alpha!r}")
        return float(self.alpha)
