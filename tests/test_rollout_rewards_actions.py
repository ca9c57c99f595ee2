"""Reward rules (each branch of each type) and action parsing (every way a reply can miss)."""
import pytest

from w4s_jax.rollout.actions import ActionParseError, extract_workflow
from w4s_jax.rollout.rewards import RewardConfig, reward

D, P = RewardConfig("discrete"), RewardConfig("discrete", low_acc_penalty=True)


@pytest.mark.parametrize("cfg,acc,best,prev,want", [
    (D, 0.8, 0.7, 0.5, 1.0),      # above the best in the history
    (D, 0.7, 0.7, 0.5, 0.5),      # equal to the best, above the previous turn
    (D, 0.6, 0.7, 0.6, 0.0),      # neither
    (D, None, 0.7, 0.5, 0.0),     # a failed candidate scores as accuracy 0
    (P, 0.2, 0.1, 0.1, 0.9),      # penalty below 0.3 ...
    (P, 0.25, 0.5, 0.1, 0.4),
    (P, 0.3, 0.5, 0.6, 0.0),      # ... and not at 0.3
    (RewardConfig("continuous"), 0.6, 0.5, 0.0, 0.2),
    (RewardConfig("continuous"), 0.3, 0.0, 0.0, 30.0),   # best floored at 0.01
    (RewardConfig("cost_aware", cost_lambda=10.0), 0.6, 0.5, 0.0, 0.1 - 10.0 * 0.002),
])
def test_reward_rules(cfg, acc, best, prev, want):
    cost = 0.002 if cfg.type == "cost_aware" else 0.0
    assert reward(cfg, acc, best=best, previous=prev, cost_per_item=cost) == pytest.approx(want)


def test_cost_aware_prefers_the_cheaper_of_two_equally_accurate_workflows():
    c = RewardConfig("cost_aware", cost_lambda=50.0)
    assert reward(c, 0.8, best=0.7, previous=0.7, cost_per_item=0.0001) > \
        reward(c, 0.8, best=0.7, previous=0.7, cost_per_item=0.001)


def test_bad_reward_config():
    with pytest.raises(ValueError, match="reward.type"):
        RewardConfig("shaped")
    with pytest.raises(ValueError, match="cost_lambda"):
        RewardConfig("cost_aware", cost_lambda=-1)


SOLVER = "def solver(agent, task):\n    return {'answer': 1}"


def test_last_closed_python_block_defining_solver_wins():
    reply = (f"Analysis.\n```python\n{SOLVER.replace('1', '2')}\n```\nBetter:\n```python\n{SOLVER}\n```\n"
             "```python\nprint('helper, no solver')\n```\n")
    assert extract_workflow(reply) == SOLVER + "\n"
    assert extract_workflow(f"```\n{SOLVER}\n```") == SOLVER + "\n"      # an untagged block is taken too


@pytest.mark.parametrize("reply,match", [
    ("", "empty"),
    ("Just prose, I would vote on answers.", "no ```python code block"),
    (f"```python\n{SOLVER}\n", "never closed"),
    ("```json\n{\"a\": 1}\n```", "not Python"),
    ("```python\nx = 1\n```", "defines `solver"),
])
def test_unusable_replies_are_explained(reply, match):
    with pytest.raises(ActionParseError, match=match):
        extract_workflow(reply)
