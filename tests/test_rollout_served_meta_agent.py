"""meta_agent.path: the collector serves a checkpoint with our JAX sampler (python -m w4s_jax.serve in a
child process) and records each candidate's behaviour log-prob and the serving model."""
import asyncio

import pytest

import env_support as es
from test_rollout_support import sandbox_or_skip
from w4s_jax.rollout.service import collect
from w4s_jax.trajectories import read_trajectories


@pytest.mark.slow
def test_collect_with_a_served_checkpoint_records_logprobs(tmp_path):
    sandbox_or_skip()
    ckpt = tmp_path / "tiny-meta-agent"
    es.make_tiny_policy(ckpt)
    ex, ma = es.start_servers()
    try:
        cfg = es.collect_config(tmp_path / "run", ex, ma, turns=1, candidates=2, repairs=0)
        cfg.meta_agent.path, cfg.meta_agent.max_tokens = str(ckpt), 12
        asyncio.run(collect(cfg))
        assert ma.stats["requests"] == 0          # the served checkpoint wrote the actions, not the script
    finally:
        ex.stop()
        ma.stop()
    recs = read_trajectories(str(tmp_path / "run" / "trajectories.jsonl"))
    assert [(r.turn, r.candidate) for r in recs] == [(0, 0), (0, 1)]
    # a random tiny model writes no workflow: both candidates fail, but their behaviour log-probs are known
    assert all(r.status == "failed" and r.action_logprob is not None and r.action_logprob < 0 for r in recs)
    assert recs[0].action != recs[1].action
    assert all(r.meta["meta_agent"] == "tiny-meta-agent" for r in recs)
