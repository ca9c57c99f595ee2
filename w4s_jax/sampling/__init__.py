"""KV-cache sampler for the meta-agent: prefill once per prompt, n samples per prompt, compiled decode loop."""
from w4s_jax.sampling.chat import (Completion, chat_completions, chat_generate, chat_stop_ids,
                                   generation_config_stop_ids)
from w4s_jax.sampling.filters import filtered_probs
from w4s_jax.sampling.options import SamplingError, SamplingOptions
from w4s_jax.sampling.sampler import (SampleRequest, SampleResult, check_request, compile_counts, generate, sample,
                                      sample_requests)
from w4s_jax.sampling.sharding import SAMPLING_RULES, shard_for_sampling

__all__ = [
    "SAMPLING_RULES", "Completion", "SampleRequest", "SampleResult", "SamplingError", "SamplingOptions",
    "chat_completions", "chat_generate", "chat_stop_ids", "check_request", "compile_counts", "filtered_probs",
    "generate", "generation_config_stop_ids", "sample", "sample_requests", "shard_for_sampling",
]
