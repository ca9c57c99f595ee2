"""The meta-agent model: Qwen2/Qwen2.5 (and Qwen3, Llama-3) in Flax NNX, HF checkpoints in and out."""
from w4s_jax.models.build import init_model, shard_model
from w4s_jax.models.chat import chat_prompt_ids, load_tokenizer
from w4s_jax.models.config import ConfigError, ModelConfig
from w4s_jax.models.hf_io import load_pretrained, save_pretrained
from w4s_jax.models.logprobs import hidden_target_logprobs, target_logprobs
from w4s_jax.models.presets import PRESETS, get_preset
from w4s_jax.models.qwen2 import REMAT_POLICIES, Qwen2
from w4s_jax.models.safetensors_io import CheckpointError
from w4s_jax.models.sharding import DEFAULT_RULES, ShardingRules, make_mesh

__all__ = [
    "CheckpointError", "ConfigError", "DEFAULT_RULES", "ModelConfig", "PRESETS", "Qwen2", "REMAT_POLICIES",
    "ShardingRules", "chat_prompt_ids", "get_preset", "hidden_target_logprobs", "init_model",
    "load_pretrained", "load_tokenizer", "make_mesh", "save_pretrained", "shard_model", "target_logprobs",
]
