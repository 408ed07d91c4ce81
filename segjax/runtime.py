"""Process-wide JAX settings that must be in place before the first computation.

- On CPU, XLA's YNNPACK convolution fusion makes convolution gradients slow; excluding individual
  convolutions from it brought a U-Net train step from 1.2x to 0.97x PyTorch's time on 2 cores
  (jaxlib 0.10.2). Set only when the user's XLA_FLAGS do not mention the option.
- Compiled programs are cached on disk (`SEGJAX_COMPILATION_CACHE`, default
  `~/.cache/segjax/xla`; "off" disables), so a second run of the same experiment skips compilation.
"""

import os
import pathlib

CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def configure() -> None:
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {CPU_FLAG}".strip()

  import jax

  cache = os.environ.get("SEGJAX_COMPILATION_CACHE", "~/.cache/segjax/xla")
  if cache != "off" and jax.config.jax_compilation_cache_dir is None:
    path = pathlib.Path(cache).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
