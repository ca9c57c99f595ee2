"""Parts of multi-host training checked in one process (the multi-process runs: test_train_multihost.py).

The per-host data path: a host's rows of a global batch, built alone, are exactly those rows of the whole
batch (pairs included, split anywhere), the whole batch's row numbers give the same objective weights,
loss-buffer size and token counts, and `device_batch` from one host's rows plus those numbers is the batch
built from the whole host batch. The `dist.*` config keys: defaults and bad values."""
import types

import jax
import numpy as np
import pytest

from train_fixtures import train_configs
from w4s_jax.models import ConfigError
from w4s_jax.train import distributed

from tiny_tokenizer import make_tiny_tokenizer
from w4s_jax.models.sharding import ShardingRules, make_mesh
from w4s_jax.train import objectives
from w4s_jax.train import step as step_lib
from w4s_jax.train.batches import BatchPlan
from w4s_jax.train.data import load_examples, preference_pairs
from w4s_jax.train.synthetic import write_synthetic_trajectories


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "t.jsonl"
    write_synthetic_trajectories(str(path), episodes=4, turns=2, candidates=3)
    return load_examples(str(path), make_tiny_tokenizer(), max_len=512)


@pytest.mark.parametrize("pairs", [False, True])
def test_a_hosts_rows_built_alone_are_those_rows_of_the_whole_batch(examples, pairs):
    plan = BatchPlan(examples, batch_size=4, max_len=512, seed=1, min_bucket=64,
                     pairs=preference_pairs(examples) if pairs else None)
    rows = plan.rows
    for position in range(plan.batches_per_epoch + 2):  # into the second epoch, padded batches included
        whole = plan.arrays(position)
        stats = plan.row_stats(position)
        for k in ("reward", "advantage", "chosen", "unit_mask"):
            np.testing.assert_array_equal(stats[k], whole[k])
        np.testing.assert_array_equal(stats["tokens"], whole["attention_mask"].sum(-1))
        np.testing.assert_array_equal(stats["loss_tokens"], whole["loss_mask"].sum(-1))
        for accum in (1, 2):
            assert step_lib.micro_loss_max(stats["loss_tokens"], accum, plan.rows_per_unit) == \
                step_lib.micro_loss_counts(whole, accum, plan.rows_per_unit)
        for start, stop in [(0, rows // 2), (rows // 2, rows), (1, rows - 1), (3, 4), (0, rows)]:
            part = plan.arrays(position, rows=slice(start, stop))
            assert set(part) == set(whole)
            for k, v in whole.items():
                np.testing.assert_array_equal(part[k], v[start:stop], err_msg=f"{k} rows {start}:{stop}")


def test_device_batch_from_one_hosts_rows_equals_the_whole_batch(examples):
    """rwr with self-normalised weights: the weights depend on the whole batch, not on a host's rows."""
    rules = ShardingRules(make_mesh(2, 2, 1, devices=jax.devices()[:4]))
    objective = objectives.get("rwr")(tau=0.4, self_normalize=True)
    plan = BatchPlan(examples, batch_size=8, max_len=512, seed=0, min_bucket=64)
    whole = plan.arrays(0)
    mine = step_lib.local_rows(rules, plan.rows)
    assert (mine.start, mine.stop) == (0, plan.rows)  # one process holds every row
    want = step_lib.device_batch(whole, rules, objective)
    got = step_lib.device_batch(plan.arrays(0, rows=mine), rules, objective, stats=plan.row_stats(0))
    assert set(got) == set(want)
    for k in want:
        assert got[k].sharding == want[k].sharding, k
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)
    assert not np.allclose(np.asarray(got["weight"])[np.asarray(got["unit_mask"])], 1.0)  # really normalised


def test_dist_keys_default_to_detection_and_bad_values_name_the_key():
    c = train_configs.get_config("tiny")
    assert (c.distributed, c.dist.coordinator, c.dist.num_processes, c.dist.process_id) == (False, "", None, None)
    assert train_configs.get_config("qwen2.5-coder-7b-tpu-v4-8").distributed  # a slice: detected, keys empty

    def dist(**kw):
        return types.SimpleNamespace(**{**dict(coordinator="localhost:1234", num_processes=2, process_id=0,
                                               init_timeout_s=5, heartbeat_timeout_s=5, shutdown_timeout_s=5), **kw})

    for kw, msg in [(dict(process_id=2), "dist.process_id: must be in"), (dict(num_processes=0), "dist.num_processes"),
                    (dict(coordinator="localhost"), "dist.coordinator: expected host:port")]:
        with pytest.raises(ConfigError, match=msg):
            distributed.initialize(dist(**kw))
    assert not jax.distributed.is_initialized()
