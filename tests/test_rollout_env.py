"""The W4S environment and collection: states, repairs, rewards, choices, records, infra errors, budget,
resume and the no-test-items guarantee, with a scripted meta-agent and a scripted executor over HTTP."""
import asyncio
import json
import os

import pytest

import env_support as es
from test_rollout_support import sandbox_or_skip
from w4s_jax.rollout.service import CollectionError, collect
from w4s_jax.trajectories import read_trajectories

EXPECTED = {  # (turn, candidate) -> (valid_acc, reward, chosen, status, repairs)
    (0, 0): (0.5, 0.0, False, "ok", 0), (0, 1): (0.75, 1.0, True, "ok", 0), (0, 2): (0.625, 1.0, False, "ok", 2),
    (1, 0): (0.375, 0.0, True, "ok", 0), (1, 1): (None, 0.0, False, "failed", 3), (1, 2): (0.25, 0.0, False, "ok", 0),
    (2, 0): (0.5, 0.5, False, "ok", 0), (2, 1): (1.0, 1.0, True, "ok", 0), (2, 2): (0.125, 0.0, False, "ok", 0),
}


def outcome(records):
    return {(r.turn, r.candidate): (r.valid_acc, r.reward, r.chosen, r.status, r.repairs) for r in records}


def comparable(path):
    """The records as sets of their full JSON (records hold no timings, so runs compare exactly)."""
    with open(path) as f:
        return sorted(f.read().splitlines())


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    sandbox_or_skip()
    ex, ma = es.start_servers()
    workdir = tmp_path_factory.mktemp("collect-ref")
    try:
        summary = asyncio.run(collect(es.collect_config(workdir, ex, ma)))
        text = es.all_request_text(ex, ma)
        n_http = ex.stats["requests"]
    finally:
        ex.stop()
        ma.stop()
    return workdir, summary, text, n_http


def test_episode_states_rewards_choices_and_records(reference_run):
    workdir, summary, _, _ = reference_run
    records = read_trajectories(str(workdir / "trajectories.jsonl"))
    assert outcome(records) == EXPECTED
    by = {(r.turn, r.candidate): r for r in records}
    # the state: system + task message, then (assistant: chosen action, user: its feedback) per earlier turn
    for t in range(3):
        msgs = by[(t, 0)].messages
        assert [m["role"] for m in msgs] == ["system", "user"] + ["assistant", "user"] * t
        assert all(by[(t, c)].messages == msgs for c in range(3))
    assert "cot: 50.0%" in by[(0, 0)].messages[1]["content"]          # the example with its accuracy
    assert by[(1, 0)].messages[2]["content"] == by[(0, 1)].action       # the chosen action advanced the state
    fb = by[(1, 0)].messages[3]["content"]
    assert "Validation accuracy: 75.0% on 40 questions" in fb and "+25.0 points" in fb
    assert fb == by[(0, 1)].meta["feedback"]
    assert "Expected answer" in fb and "Question" in fb                  # cases, failures first
    # repairs: the failed candidate kept its attempts and its last problem
    failed = by[(1, 1)]
    assert failed.meta["error"].startswith("The ```python block was never closed")
    assert len(failed.meta["attempts"]) == 3 and failed.meta["code"] is None
    repaired = by[(0, 2)]
    assert [a["problem"][:20] for a in repaired.meta["attempts"]] == ["The reply contains n", "Running it on one qu"]
    assert "ZeroDivisionError" in repaired.meta["attempts"][1]["problem"]
    assert "Failing line" in repaired.meta["attempts"][1]["problem"]
    assert all(r.usage["executor_prompt_tokens"] > 0 for r in records if r.status == "ok")
    assert [p["best_valid_acc"] for p in summary["per_turn"]] == [0.75, 0.75, 1.0]
    for name in ("summary.json", "run_info.json", "examples/env_arith.json"):
        assert (workdir / name).exists()
    info = json.loads((workdir / "run_info.json").read_text())
    assert info["git"]["commit"] and info["packages"]["openai"] and len(info["tasks"]["env_arith"]["env_item_ids"]) == 40


def test_no_valid_or_test_item_reaches_either_server(reference_run):
    _, _, text, _ = reference_run
    assert "Question 3:" in text                      # train items were used ...
    for k in [*es.VALID, *es.TEST]:                   # ... and nothing else, in any request to either server
        assert f"Question {k}:" not in text


class FlakyExecutor(es.SimServer):
    """Answers until `down` is set, then fails every request with a 500."""
    down = False

    def _pick_fault(self):
        return "500" if self.down else None


def test_executor_down_ends_the_turn_as_infra_error_then_resume_completes(reference_run, tmp_path):
    ref_dir = reference_run[0]
    ex = FlakyExecutor(es.executor_reply).start()
    tripped = []

    def meta(body, choice):
        msgs = body["messages"]
        repair = msgs[-1]["content"].startswith("Your reply could not be used")
        turn = sum(1 for m in (msgs[:-2] if repair else msgs) if m["role"] == "assistant")
        if turn == 1 and not tripped:
            ex.down = True                            # the API goes down while turn 1 is being evaluated
            tripped.append(True)
        return es.meta_agent_reply(body, choice)

    ma = es.SimServer(meta).start()
    try:
        cfg = es.collect_config(tmp_path, ex, ma)
        cfg.executor.max_retries = 1
        with pytest.raises(CollectionError, match="infrastructure errors"):
            asyncio.run(collect(cfg))
        records = read_trajectories(str(tmp_path / "trajectories.jsonl"))
        assert sorted({r.turn for r in records}) == [0]          # turn 1 was not scored as 0: not recorded
        assert json.loads((tmp_path / "summary.json").read_text())["stopped_early"] is True
        ex.down = False
        asyncio.run(collect(cfg))                                 # the same command again resumes
    finally:
        ex.stop()
        ma.stop()
    assert comparable(tmp_path / "trajectories.jsonl") == comparable(ref_dir / "trajectories.jsonl")


def test_budget_exhausted_stops_cleanly_and_a_rerun_replays_what_was_paid_for(reference_run, tmp_path):
    ref_dir, _, _, ref_http = reference_run
    ex, ma = es.start_servers()
    try:
        cfg = es.collect_config(tmp_path, ex, ma)
        cfg.executor.model = "gpt-4o-mini"   # priced: the budget applies
        cfg.executor.budget_usd = 5e-4       # enough for the example and part of turn 0
        with pytest.raises(CollectionError, match=r"budget \(executor.budget_usd\) is spent"):
            asyncio.run(collect(cfg))
        assert json.loads((tmp_path / "summary.json").read_text())["budget_exhausted"] is True
        cfg.executor.budget_usd = 1.0
        asyncio.run(collect(cfg))
        n_http = ex.stats["requests"]
    finally:
        ex.stop()
        ma.stop()
    got = read_trajectories(str(tmp_path / "trajectories.jsonl"))
    assert outcome(got) == EXPECTED
    assert n_http < ref_http + 60        # the calls made before the stop were replayed, not paid twice


def test_resume_refuses_a_workdir_of_another_config(reference_run):
    workdir = reference_run[0]
    cfg = es.collect_config(workdir, es.SimServer(), es.SimServer())
    cfg.candidates = 4
    with pytest.raises(ValueError, match="candidates"):
        asyncio.run(collect(cfg))


def test_collection_refuses_a_task_without_train_items(tmp_path):
    cfg = es.collect_config(tmp_path, es.SimServer(), es.SimServer())
    cfg.task = "env_support:make_task_without_train"
    with pytest.raises(ValueError, match="no train split"):
        asyncio.run(collect(cfg))
    assert not (tmp_path / "trajectories.jsonl").exists()


def test_shards_split_the_episodes_and_together_equal_one_run(reference_run, tmp_path):
    ex, ma = es.start_servers()
    try:
        whole = es.collect_config(tmp_path / "whole", ex, ma, episodes=2, turns=1)
        asyncio.run(collect(whole))
        for i in (0, 1):
            asyncio.run(collect(es.collect_config(tmp_path / "sharded", ex, ma, episodes=2, turns=1,
                                                  shard=f"{i}/2")))
    finally:
        ex.stop()
        ma.stop()
    files = sorted((tmp_path / "sharded").glob("trajectories*.jsonl"))
    assert [f.name for f in files] == ["trajectories-000-of-002.jsonl", "trajectories-001-of-002.jsonl"]
    eps = [{r.episode_id for r in read_trajectories(str(f))} for f in files]
    assert eps == [{"env_arith-000"}, {"env_arith-001"}]
    union = sorted(x for f in files for x in comparable(f))
    assert union == comparable(tmp_path / "whole" / "trajectories.jsonl")
    assert len(read_trajectories(str(tmp_path / "sharded" / "trajectories*.jsonl"))) == 2 * 3
