"""Trajectory JSONL -> examples -> batches: validation errors, loss masks, truncation, order, slicing."""
import json

import numpy as np
import pytest

from tiny_tokenizer import make_tiny_tokenizer
from w4s_jax.train.batches import BatchPlan, host_slice, loss_token_cap
from w4s_jax.train.data import ChatEncoder, load_examples, preference_pairs, split_by_episode
from w4s_jax.train.synthetic import synthetic_records
from w4s_jax.trajectories import TrajectoryError, read_trajectories


def _write(path, records, tail=""):
    with open(path, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
        f.write(tail)
    return str(path)


@pytest.fixture(scope="module")
def tok():
    return make_tiny_tokenizer()


def test_malformed_line_names_file_and_line(tmp_path):
    recs = synthetic_records(episodes=1, turns=1, candidates=3)
    path = _write(tmp_path / "t.jsonl", [recs[0], '{"schema": 1, "run_id": ', recs[2]])
    with pytest.raises(TrajectoryError, match=r"t\.jsonl:2: not valid JSON"):
        read_trajectories(path)


@pytest.mark.parametrize("reward,msg", [(float("nan"), "not a finite number"), (None, "reward is null"),
                                        ("missing", "required field 'reward' is missing"),
                                        ("1.0", "field 'reward' has type str")])
def test_bad_reward(tmp_path, reward, msg):
    recs = synthetic_records(episodes=1, turns=1, candidates=2)
    if reward == "missing":
        del recs[1]["reward"]
    else:
        recs[1]["reward"] = reward
    path = _write(tmp_path / "t.jsonl", recs)
    with pytest.raises(TrajectoryError, match=rf"t\.jsonl:2: .*{msg}"):
        read_trajectories(path)


def test_truncated_last_line_is_reported_and_skipped(tmp_path, caplog):
    recs = synthetic_records(episodes=1, turns=1, candidates=3)
    path = _write(tmp_path / "t.jsonl", recs[:2], tail=json.dumps(recs[2])[:40])
    report = {}
    with caplog.at_level("WARNING"):
        out = read_trajectories(path, report)
    assert len(out) == 2 and report["truncated_lines"] == 1
    assert "t.jsonl:3: skipping a truncated last line" in caplog.text
    # a complete last line without its newline is kept
    path = _write(tmp_path / "u.jsonl", recs[:2], tail=json.dumps(recs[2]))
    assert len(read_trajectories(path)) == 3


def test_duplicates_and_globs(tmp_path):
    recs = synthetic_records(episodes=2, turns=1, candidates=2)
    _write(tmp_path / "a.jsonl", recs[:3])
    _write(tmp_path / "b.jsonl", recs[2:])  # recs[2] appears twice (a resumed writer)
    report = {}
    out = read_trajectories(str(tmp_path / "*.jsonl"), report)
    assert [r.key for r in out] == [tuple([r["run_id"], r["episode_id"], r["turn"], r["candidate"]]) for r in recs]
    assert report["duplicates"] == 1
    with pytest.raises(TrajectoryError, match="no trajectory files match"):
        read_trajectories(str(tmp_path / "none*.jsonl"))


def test_action_and_all_assistant_masks(tmp_path, tok):
    recs = synthetic_records(episodes=1, turns=2, candidates=2)
    path = _write(tmp_path / "t.jsonl", recs)
    action = load_examples(path, tok, max_len=1024, loss_on="action")
    every = load_examples(path, tok, max_len=1024, loss_on="all_assistant")
    enc = ChatEncoder(tok)
    for r, a, e in zip(recs, action, every):
        want = r["action"] + "<|im_end|>"
        assert tok.decode(a.ids[1:][a.loss_mask[:-1]]) == want
        assert a.ids[-1] == enc.eot_id and not a.loss_mask[-1]
        np.testing.assert_array_equal(a.ids, e.ids)
        earlier = "".join(m["content"] + "<|im_end|>" for m in r["messages"] if m["role"] == "assistant")
        assert tok.decode(e.ids[1:][e.loss_mask[:-1]]) == earlier + want
    # turn 1 has an assistant turn in its state: more loss tokens with all_assistant
    assert every[-1].loss_mask.sum() > action[-1].loss_mask.sum()
    # candidates of the same state share a state id; advantages are relative to the state's mean reward
    assert action[0].state == action[1].state != action[2].state
    np.testing.assert_allclose(action[0].advantage + action[1].advantage, 0.0, atol=1e-9)


def test_truncation_keeps_the_action_and_reports(tmp_path, tok):
    recs = synthetic_records(episodes=2, turns=2, candidates=2)
    path = _write(tmp_path / "t.jsonl", recs)
    full = load_examples(path, tok, max_len=4096)
    shortest_action = min(int(e.loss_mask.sum()) for e in full)
    limit = max(len(e) for e in full) - 10
    for policy in ("middle", "left"):
        report = {}
        ex = load_examples(path, tok, max_len=limit, truncate=policy, keep_head=8, report=report)
        assert report["shortened"] > 0 and report["dropped_too_long"] == 0
        for e, f in zip(ex, full):
            assert len(e) <= limit
            n = int(f.loss_mask.sum()) + 1
            np.testing.assert_array_equal(e.ids[-n:], f.ids[-n:])  # the action is intact
            assert e.loss_mask.sum() == f.loss_mask.sum()
            if policy == "middle":
                np.testing.assert_array_equal(e.ids[:8], f.ids[:8])
    report = {}
    ex = load_examples(path, tok, max_len=limit, truncate="drop", report=report)
    assert report["dropped_too_long"] == len(full) - len(ex) > 0
    # an action longer than max_len is dropped, never cut
    report = {}
    with pytest.raises(TrajectoryError, match="no training examples left.*longer than max_len"):
        load_examples(path, tok, max_len=shortest_action - 1, report=report)


def test_empty_after_filtering_is_an_error(tmp_path, tok):
    recs = synthetic_records(episodes=1, turns=1, candidates=3)
    for r in recs:
        r["status"] = "failed"
    path = _write(tmp_path / "t.jsonl", recs)
    with pytest.raises(TrajectoryError, match="no training examples left.*3 failed candidates skipped"):
        load_examples(path, tok, max_len=512)
    for r in recs:
        r["status"], r["chosen"] = "ok", False
    path = _write(tmp_path / "t.jsonl", recs)
    with pytest.raises(TrajectoryError, match="3 removed by the objective's filter"):
        load_examples(path, tok, max_len=512, keep=lambda r: r.chosen)


def test_batch_plan_is_deterministic_covers_every_example_and_buckets(tmp_path, tok):
    path = _write(tmp_path / "t.jsonl", synthetic_records(episodes=5, turns=2, candidates=3))
    ex = load_examples(path, tok, max_len=512)
    plan = BatchPlan(ex, batch_size=4, max_len=512, seed=3, min_bucket=64)
    again = BatchPlan(ex, batch_size=4, max_len=512, seed=3, min_bucket=64)
    assert plan.epoch(0) == again.epoch(0) and plan.epoch(0) != plan.epoch(1)
    assert plan.fingerprint() == again.fingerprint()
    assert plan.fingerprint() != BatchPlan(ex, batch_size=4, max_len=512, seed=4).fingerprint()
    seen = sorted(u for _, units in plan.epoch(0) for u in units)
    assert seen == list(range(len(ex)))
    for k in range(plan.batches_per_epoch):
        b = plan.arrays(k)
        length = b["input_ids"].shape[1]
        assert length in plan.buckets and b["input_ids"].shape[0] == 4
        real = b["unit_mask"]
        assert (b["attention_mask"].sum(1)[real] <= length).all() and not b["loss_mask"][~real].any()
        # targets are the next tokens
        np.testing.assert_array_equal(b["targets"][:, :-1][b["loss_mask"][:, :-1]],
                                      b["input_ids"][:, 1:][b["loss_mask"][:, :-1]])
    # batch k of the run is a pure function of k
    np.testing.assert_array_equal(plan.arrays(plan.batches_per_epoch + 1)["input_ids"],
                                  again.arrays(plan.batches_per_epoch + 1)["input_ids"])
    halves = [host_slice(plan.arrays(0), p, 2) for p in range(2)]
    np.testing.assert_array_equal(np.concatenate([h["input_ids"] for h in halves]), plan.arrays(0)["input_ids"])
    assert loss_token_cap(100, 10_000) == 104 and loss_token_cap(1159, 10**6) == 1280 and loss_token_cap(100, 96) == 96 and loss_token_cap(3, 999) == 64


def test_preference_pairs(tmp_path, tok):
    path = _write(tmp_path / "t.jsonl", synthetic_records(episodes=3, turns=1, candidates=4, seed=1))
    ex = load_examples(path, tok, max_len=512)
    pairs = preference_pairs(ex, max_pairs_per_state=2)
    assert pairs
    for hi, lo in pairs:
        assert ex[hi].state == ex[lo].state and ex[hi].reward > ex[lo].reward
    assert max(sum(ex[h].state == s for h, _ in pairs) for s in {e.state for e in ex}) <= 2
    plan = BatchPlan(ex, batch_size=2, max_len=512, seed=0, pairs=pairs)
    b = plan.arrays(0)
    assert b["input_ids"].shape[0] == 4
    assert (b["reward"][0::2] > b["reward"][1::2])[b["unit_mask"][0::2]].all()


def test_held_out_split_is_by_episode_and_stable(tmp_path):
    path = _write(tmp_path / "t.jsonl", synthetic_records(episodes=24, turns=2, candidates=3))
    records = read_trajectories(path)
    train, held = split_by_episode(records, 0.25)
    episodes = lambda rs: {r.episode_id for r in rs}
    assert episodes(train).isdisjoint(episodes(held))  # no episode (so no state) on both sides
    assert episodes(train) | episodes(held) == episodes(records) and len(train) + len(held) == len(records)
    assert 2 <= len(episodes(held)) <= 12
    # whole episodes: every line of a held-out episode is held out
    assert len(held) == sum(r.episode_id in episodes(held) for r in records)
    # the same episodes whatever the order, and they stay held out when more data arrives
    more = read_trajectories(_write(tmp_path / "u.jsonl", synthetic_records(episodes=40, turns=1, candidates=2)))
    _, held_again = split_by_episode(records[::-1] + [r for r in more if r.episode_id not in episodes(records)], 0.25)
    assert episodes(held) == episodes(held_again) & episodes(records)
    # at least one episode is held out, never all of them
    assert len(episodes(split_by_episode(records[:12], 0.01)[1])) == 1
    with pytest.raises(ValueError, match="leaves none to train on"):
        split_by_episode(records[:12], 0.99)


def test_held_out_data_from_the_config(tmp_path):
    from train_fixtures import tiny_config
    from w4s_jax.models import ConfigError
    from w4s_jax.train import objectives
    from w4s_jax.train.setup import build_data, build_tokenizer

    cfg = tiny_config(tmp_path / "run", **{"data.eval_fraction": 0.3})
    tok, rwr = build_tokenizer(cfg), objectives.get("rwr")()
    data = build_data(cfg, tok, rwr, 512)
    assert data.held_out and data.report["eval_episodes"] >= 1
    assert len(data.examples) + len(data.held_out) == data.report["records"]
    assert len(data.held_out) == data.report["eval_records"] == data.report["eval_examples"]
    # a separate held-out file may not share an episode with the training data
    records = synthetic_records(episodes=3, turns=1, candidates=2)
    data_path = _write(tmp_path / "train.jsonl", records)
    other = _write(tmp_path / "eval.jsonl", [dict(r, episode_id="x" + r["episode_id"]) for r in records])
    cfg = tiny_config(tmp_path / "run", **{"data.path": data_path, "data.eval_path": other, "data.synthetic": False})
    assert len(build_data(cfg, tok, rwr, 512).held_out) == len(records)
    cfg.data.eval_path = _write(tmp_path / "leak.jsonl", records[:1])
    with pytest.raises(ConfigError, match="data.eval_path: 1 episode.*also in the training data.*episode_id='ep0'"):
        build_data(cfg, tok, rwr, 512)
