"""Feature pyramid network (Lin et al., 2017) over ResNet stages, as detectron2 builds it.

`{"c2".."c5"}` -> `{"p2".."p6"}`: 1x1 laterals, a top-down path of nearest 2x up-sampling and
addition, a 3x3 output conv per level, and P6 as a stride-2 subsampling of P5 (detectron2's
`LastLevelMaxPool`, a 1x1 max pool).
"""

import flax.linen as nn
import jax.numpy as jnp


def _upsample_nearest_2x(x, size_hw):
  x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return x[:, : size_hw[0], : size_hw[1]]


class FPN(nn.Module):
  """`features: {"c2": f[B,H/4,W/4,D2], ..., "c5": f[B,H/32,W/32,D5]}` ->
  `{"p2": f[B,H/4,W/4,features], ..., "p6": f[B,H/64,W/64,features]}`."""

  features: int = 256
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features):
    names = ("c2", "c3", "c4", "c5")
    laterals = {
      n: nn.Conv(self.features, (1, 1), dtype=self.dtype, name=f"lateral_{n}")(features[n])
      for n in names
    }
    top = laterals["c5"]
    merged = {"c5": top}
    for n in reversed(names[:-1]):
      lateral = laterals[n]
      top = lateral + _upsample_nearest_2x(top, lateral.shape[1:3])
      merged[n] = top
    out = {}
    for n in names:
      level = f"p{n[1]}"
      out[level] = nn.Conv(
        self.features, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name=f"output_{level}"
      )(merged[n])
    out["p6"] = out["p5"][:, ::2, ::2]
    return out
