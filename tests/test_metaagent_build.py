"""The cached build of the tiny meta-agent: cache keys and places, reuse without training, incomplete or
failed builds never used. The slow test builds a reduced meta-agent end to end."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from w4s_jax.metaagent import build as B
from w4s_jax.metaagent.config import tiny_meta_agent_config


def _no_build(*args, **kwargs):
    raise AssertionError("build_or_load started a build although the cache holds the model")


def test_cache_key_follows_the_config():
    a, b = tiny_meta_agent_config(), tiny_meta_agent_config()
    assert B.cache_key(a) == B.cache_key(b)
    b.train.steps += 1
    assert B.cache_key(a) != B.cache_key(b)
    c = tiny_meta_agent_config()
    c.corpus.tasks = "synth_arith"
    assert B.cache_key(c) not in (B.cache_key(a), B.cache_key(b))


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.delenv("W4S_CACHE_DIR", raising=False)
    assert B.cache_root() == os.path.join(os.path.expanduser("~"), ".cache", "w4s_jax", "meta_agent")
    monkeypatch.setenv("W4S_CACHE_DIR", str(tmp_path / "env"))
    assert B.cache_root() == str(tmp_path / "env" / "meta_agent")
    assert B.cache_root(str(tmp_path / "explicit")) == str(tmp_path / "explicit" / "meta_agent")


def test_a_complete_build_is_loaded_without_building(monkeypatch, tmp_path):
    cfg = tiny_meta_agent_config()
    path = os.path.join(B.cache_root(str(tmp_path)), B.cache_key(cfg))
    os.makedirs(path)
    with open(os.path.join(path, B.BUILD_FILE), "w") as f:
        json.dump({}, f)
    monkeypatch.setattr(subprocess, "run", _no_build)
    assert B.build_or_load(cfg, str(tmp_path)) == path


def _fake_child(calls: list, status: int = 0):
    """Stands in for the build child: writes build.json into --out (or fails)."""
    def run(cmd, **kwargs):
        calls.append(cmd)
        out = cmd[cmd.index("--out") + 1]
        if status == 0:
            with open(os.path.join(out, B.BUILD_FILE), "w") as f:
                json.dump({"fake": True}, f)
        return subprocess.CompletedProcess(cmd, status, stdout="", stderr="child failed")
    return run


def test_an_incomplete_directory_is_rebuilt_in_a_temporary_place(monkeypatch, tmp_path):
    cfg = tiny_meta_agent_config()
    root = B.cache_root(str(tmp_path))
    path = os.path.join(root, B.cache_key(cfg))
    os.makedirs(path)                      # no build.json: a half-written directory, never used as is
    open(os.path.join(path, "config.json"), "w").close()
    calls: list = []
    monkeypatch.setattr(subprocess, "run", _fake_child(calls))
    assert B.build_or_load(cfg, str(tmp_path), quiet=True) == path
    assert len(calls) == 1 and json.load(open(os.path.join(path, B.BUILD_FILE))) == {"fake": True}
    assert not os.path.exists(os.path.join(path, "config.json"))
    assert [n for n in os.listdir(root) if n.endswith(".partial")] == []
    # and now it is complete: no second build
    monkeypatch.setattr(subprocess, "run", _no_build)
    assert B.build_or_load(cfg, str(tmp_path)) == path


def test_a_failed_build_leaves_nothing_behind(monkeypatch, tmp_path):
    cfg = tiny_meta_agent_config()
    calls: list = []
    monkeypatch.setattr(subprocess, "run", _fake_child(calls, status=1))
    with pytest.raises(RuntimeError, match="child failed"):
        B.build_or_load(cfg, str(tmp_path), quiet=True)
    root = B.cache_root(str(tmp_path))
    assert [n for n in os.listdir(root) if not n.endswith(".lock")] == []


def test_train_config_is_the_tiny_preset_with_sft_on_the_corpus(tmp_path):
    cfg = tiny_meta_agent_config()
    tc = B.train_config(cfg, workdir=str(tmp_path / "w"), model_path=str(tmp_path / "m"),
                        data_path=str(tmp_path / "c.jsonl"))
    assert tc.objective.name == "sft" and tc.objective.sft.filter == "chosen"
    assert tc.data.truncate == "middle" and tc.data.keep_head == cfg.train.keep_head
    assert tc.data.max_len == cfg.train.max_len and not tc.data.synthetic
    assert tc.total_steps == cfg.train.steps and tc.batch_size == cfg.train.batch_size
    assert tc.model.path == tc.tokenizer.path == str(tmp_path / "m") and tc.export_hf
