"""The trajectory writer: whole lines per turn, torn last line cut on reopen, no duplicate keys on resume."""
import json

import pytest

from w4s_jax.trajectories import TrajectoryError, TrajectoryWriter, make_record, read_trajectories


def rec(ep="e0", turn=0, cand=0, reward=1.0, **kw):
    return make_record(run_id="r", episode_id=ep, task="t", turn=turn, candidate=cand,
                       messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                       action="```python\ndef solver(agent, task):\n    return {'answer': 1}\n```",
                       reward=reward, valid_acc=0.5, chosen=cand == 0, status="ok",
                       usage={"executor_prompt_tokens": 3, "executor_completion_tokens": 4, "cost_usd": 0.01},
                       repairs=1, meta={"code": "x"}, **kw)


def test_round_trip_and_resume_without_duplicates(tmp_path):
    p = tmp_path / "traj.jsonl"
    with TrajectoryWriter(p) as w:
        assert w.write_turn([rec(cand=0), rec(cand=1, reward=0.0)]) == 2
    with open(p, "ab") as f:                       # a crash in the middle of the next turn's line
        f.write(json.dumps(rec(turn=1)).encode()[:40])
    with TrajectoryWriter(p) as w:
        assert w.cut_bytes == 40 and len(w.existing) == 2
        assert w.has("e0", 0, 1) and not w.has("e0", 1, 0)
        assert w.write_turn([rec(cand=1), rec(turn=1)]) == 1   # (e0, 0, 1) is already there
    rs = read_trajectories(str(p))
    assert [(r.turn, r.candidate) for r in rs] == [(0, 0), (0, 1), (1, 0)]
    assert rs[0].repairs == 1 and rs[0].usage["cost_usd"] == 0.01 and rs[0].meta == {"code": "x"}


def test_bad_records_are_refused_and_nothing_written(tmp_path):
    p = tmp_path / "traj.jsonl"
    with TrajectoryWriter(p) as w:
        w.write_turn([rec()])
        with pytest.raises(TrajectoryError, match="status"):
            w.write_turn([{**rec(turn=1), "status": "weird"}])
        with pytest.raises(ValueError):
            w.write_turn([rec(turn=2, reward=float("nan"))])
    assert len(read_trajectories(str(p))) == 1


def test_malformed_middle_line_is_an_error_naming_file_and_line(tmp_path):
    p = tmp_path / "traj.jsonl"
    p.write_text(json.dumps(rec()) + "\n{oops\n" + json.dumps(rec(turn=1)) + "\n")
    with pytest.raises(TrajectoryError, match=r"traj.jsonl:2"):
        TrajectoryWriter(p)
    assert p.read_text().count("\n") == 3          # nothing was cut or rewritten
