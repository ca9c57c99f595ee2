"""Policy exports and hot reload: a server on a trainer workdir picks up a newer step between batches, its
replies then equal a fresh server's on that step, and half-written or broken steps are passed over."""
import json
import os
import shutil

import jax.numpy as jnp
import openai
import pytest

from serve_support import CONVS, NEW, make_checkpoint, tokenizer
from w4s_jax.models import load_pretrained
from w4s_jax.serve import PolicyServer
from w4s_jax.train.export import export_policy


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("hf_a"), tmp_path_factory.mktemp("hf_b")
    make_checkpoint(a, seed=3)
    make_checkpoint(b, seed=4)
    return a, b


def _greedy(srv):
    client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
    r = client.chat.completions.create(model="m", messages=CONVS[1], temperature=0, max_tokens=NEW)
    return r.model, r.model_extra["policy_step"], r.choices[0].message.content


def test_export_is_complete_and_finds_the_trainer_tokenizer(tmp_path, checkpoints):
    a, _ = checkpoints
    workdir = tmp_path / "run"
    tokenizer().save_pretrained(workdir / "tokenizer")  # where the tiny trainer preset keeps its tokenizer
    model = load_pretrained(a, dtype=jnp.float32)
    out = export_policy(model, str(workdir / "policy" / "7"), step=7)
    names = set(os.listdir(out))
    assert {"params", "config.json", "policy.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert names & {"chat_template.jinja", "chat_template.json"} or "chat_template" in (
        workdir / "policy" / "7" / "tokenizer_config.json").read_text()
    assert json.loads((workdir / "policy" / "7" / "policy.json").read_text())["step"] == 7
    assert os.listdir(workdir / "policy") == ["7"]  # no temporary directory left behind
    # Exporting the same step again replaces it whole.
    export_policy(model, out, step=7)
    assert os.listdir(workdir / "policy") == ["7"]


def test_hot_reload_between_batches(tmp_path, checkpoints):
    a, b = checkpoints
    workdir = tmp_path / "run"
    policy = workdir / "policy"
    export_policy(load_pretrained(a, dtype=jnp.float32), str(policy / "1"), step=1, tokenizer=str(a))
    with PolicyServer(str(workdir), reload_poll_s=0.1) as srv:
        model_id, step, first = _greedy(srv)
        assert (model_id, step) == ("policy/1", 1)

        # Passed over: a step still being written (no policy.json yet), a temporary export directory, and a
        # complete step whose parameters are broken (reported once, never retried).
        (policy / "3").mkdir()
        shutil.copy(policy / "1" / "config.json", policy / "3" / "config.json")
        shutil.copytree(policy / "1", policy / ".4.partial")
        shutil.copytree(policy / "1", policy / "5")
        for f in (policy / "5" / "params").rglob("*"):
            if f.is_file():
                f.write_bytes(b"garbage")
        assert _greedy(srv) == ("policy/1", 1, first)
        assert srv.stats["reload_failures"] == 1 and srv.stats["reloads"] == 0

        export_policy(load_pretrained(b, dtype=jnp.float32), str(policy / "2"), step=2, tokenizer=str(b))
        model_id, step, second = _greedy(srv)
        assert (model_id, step) == ("policy/2", 2) and second != first
        assert srv.stats["reloads"] == 1 and srv.stats["reload_failures"] == 1
        assert [m.id for m in openai.OpenAI(base_url=srv.base_url, api_key="u").models.list().data] == ["policy/2"]

    # A fresh server on the exported step gives the same reply; pointed at one step, it never reloads.
    with PolicyServer(str(policy / "2")) as fresh:
        assert _greedy(fresh) == ("policy/2", 2, second)
        export_policy(load_pretrained(a, dtype=jnp.float32), str(policy / "9"), step=9, tokenizer=str(a))
        assert _greedy(fresh) == ("policy/2", 2, second)
