"""Published architecture numbers (from the models' config.json on the hub) and a tiny test preset."""
from __future__ import annotations

from w4s_jax.models.config import ConfigError, ModelConfig

_QWEN = dict(rope_theta=1_000_000.0, rms_norm_eps=1e-6, max_position_embeddings=32768, family="qwen2",
             bos_token_id=151643, eos_token_id=151645)

PRESETS: dict[str, ModelConfig] = {
    "qwen2.5-0.5b": ModelConfig(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_layers=24,
                                num_heads=14, num_kv_heads=2, head_dim=64, tie_word_embeddings=True, **_QWEN),
    "qwen2.5-1.5b": ModelConfig(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_layers=28,
                                num_heads=12, num_kv_heads=2, head_dim=128, tie_word_embeddings=True, **_QWEN),
    "qwen2.5-3b": ModelConfig(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_layers=36,
                              num_heads=16, num_kv_heads=2, head_dim=128, tie_word_embeddings=True, **_QWEN),
    "qwen2.5-7b": ModelConfig(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_layers=28,
                              num_heads=28, num_kv_heads=4, head_dim=128, tie_word_embeddings=False, **_QWEN),
    # Same shapes as Qwen2.5-7B; the meta-agent of the paper.
    "qwen2.5-coder-7b": ModelConfig(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_layers=28,
                                    num_heads=28, num_kv_heads=4, head_dim=128, tie_word_embeddings=False,
                                    **_QWEN),
    # For tests: seconds on a CPU.
    "tiny": ModelConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                        num_kv_heads=2, head_dim=16, tie_word_embeddings=True, rope_theta=10000.0,
                        max_position_embeddings=2048, family="qwen2"),
    # The ~45M-parameter benchmark config: Qwen's real 152k vocabulary on a narrow trunk, so the output
    # head weighs as it does in RLAO training (long states, 152k-way softmax).
    "bench-50m": ModelConfig(vocab_size=151936, hidden_size=256, intermediate_size=1024, num_layers=4,
                             num_heads=4, num_kv_heads=2, head_dim=64, tie_word_embeddings=True,
                             rope_theta=1_000_000.0, max_position_embeddings=32768, family="qwen2"),
}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}") from None
