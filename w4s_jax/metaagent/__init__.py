"""The tiny meta-agent of the embedded default: the space of workflows it writes (space.py, render.py,
describe.py), its warm-start corpus (corpus.py), tokenizer (tokenizer.py) and the cached build
(build.py, config.py). Importing this package imports no JAX; `build_or_load` trains in a child process."""
from .build import build_or_load, cache_root
from .config import tiny_meta_agent_config
from .space import TECHNIQUES, Design, describe, designs, sample_action, sample_design, task_style

__all__ = ["TECHNIQUES", "Design", "build_or_load", "cache_root", "describe", "designs", "sample_action",
           "sample_design", "task_style", "tiny_meta_agent_config"]
