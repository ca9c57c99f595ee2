"""Config keys shared by the rollout scripts (configs/collect.py, configs/optimize.py, configs/rlao.py)."""
from __future__ import annotations

import ml_collections


def rollout_base() -> ml_collections.ConfigDict:
    """Keys shared by collection and optimisation (configs/optimize.py builds on this)."""
    c = ml_collections.ConfigDict()
    c.preset = ""
    c.workdir = "runs/collect"
    c.seed = 0
    c.run_id = ""               # empty: derived from the settings that decide the trajectories
    c.task = "gsm_hard"         # a registered task, or several comma-separated
    c.data_dir = ""             # local benchmark files ($W4S_DATA_DIR when empty)
    c.turns = 5                 # T: workflow-design turns per episode
    c.candidates = 5            # m: actions sampled and evaluated per turn (best-of-m)
    c.repairs = 3               # repair rounds for a candidate whose code fails its self-check
    c.window = 3                # generated turns shown in full in the state
    c.feedback_cases = 3        # cases (failures first) shown in the feedback
    c.examples = "cot"          # seed workflows shown (with their accuracy) as examples, comma-separated
    c.max_parallel_episodes = 8
    c.progress = True

    c.reward = ml_collections.ConfigDict()
    c.reward.type = "discrete"  # discrete | continuous | cost_aware
    c.reward.low_acc_penalty = False   # discrete: -0.1 below 0.3 accuracy (the public W4S code)
    c.reward.cost_lambda = 0.0  # cost_aware: reward given up per executor dollar per item

    c.executor = ml_collections.ConfigDict()
    c.executor.base_url = ""    # OpenAI-compatible endpoint of the strong model
    c.executor.model = "gpt-4o-mini"
    c.executor.api_key_env = "OPENAI_API_KEY"
    c.executor.max_concurrency = 64
    c.executor.budget_usd = 0.0  # 0 = no cap; the run stops cleanly when the cap is reached
    c.executor.cache = True     # replay cache in <workdir>/executor_cache.sqlite (exact resume)
    c.executor.max_retries = 8  # per call, for 429/5xx/timeouts (honouring Retry-After)

    c.meta_agent = ml_collections.ConfigDict()
    c.meta_agent.base_url = ""  # OpenAI-compatible endpoint of the meta-agent ...
    c.meta_agent.model = "Qwen2.5-Coder-7B-Instruct"
    c.meta_agent.path = ""      # ... or an HF dir / policy export / trainer workdir: served by our JAX sampler
    c.meta_agent.dtype = "auto"  # meta_agent.path: parameter dtype of the served policy
    c.meta_agent.mesh = ""      # meta_agent.path: device mesh, e.g. "tensor=8"
    c.meta_agent.api_key_env = "OPENAI_API_KEY"
    c.meta_agent.temperature = 0.8
    c.meta_agent.max_tokens = 2048
    c.meta_agent.max_concurrency = 16
    c.meta_agent.cache = True   # replay cache in <workdir>/meta_agent_cache.sqlite
    c.meta_agent.logprobs = False  # ask the endpoint for token log-probs: records carry action_logprob

    c.sandbox = ml_collections.ConfigDict()
    c.sandbox.mode = "bwrap"    # "none" only for trusted code
    c.sandbox.pool_size = 8     # sandboxes kept started across turns and episodes
    c.sandbox.item_timeout_s = 120.0
    return c


def paper_preset(c: ml_collections.ConfigDict, executor_model: str) -> None:
    c.executor.base_url = "https://api.openai.com/v1"
    c.executor.model = executor_model
    c.meta_agent.base_url = "http://127.0.0.1:8000/v1"
    c.meta_agent.model = "Qwen2.5-Coder-7B-Instruct"
    c.meta_agent.api_key_env = "W4S_LOCAL_KEY"   # local servers ignore the key
    c.turns, c.candidates = 10, 5
