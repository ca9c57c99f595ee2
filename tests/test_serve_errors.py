"""Bad input to the server fails at start with one clear error naming what and where; the command line
follows the project's server convention (LISTENING <port>, exit when stdin closes, `error: ...` and exit
status 2 on bad input)."""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import jax.numpy as jnp
import pytest

from serve_support import make_checkpoint, tokenizer
from w4s_jax.models import load_pretrained
from w4s_jax.serve import PolicyServer, ServeError, parse_mesh
from w4s_jax.serve import main as serve_main
from w4s_jax.train.export import export_policy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """A checkpoint, a complete export of it, and broken variants of both."""
    root = tmp_path_factory.mktemp("layouts")
    hf = root / "hf"
    make_checkpoint(hf)
    export = root / "run" / "policy" / "1"
    export_policy(load_pretrained(hf, dtype=jnp.float32), str(export), step=1, tokenizer=str(hf))
    return root, hf, export


def _variant(layouts, name, source, edit):
    root = layouts[0]
    dst = root / name
    if not dst.exists():
        shutil.copytree(source, dst)
        edit(dst)
    return dst


def _drop(*names):
    def edit(d):
        for n in names:
            p = d / n
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return edit


def _write(name, text):
    return lambda d: (d / name).write_text(text)


def _garble_params(d):
    for f in (d / "params").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\0garbage")


CASES = {
    "missing": (None, None, "no such directory"),
    "not a model": ("hf", _drop("config.json", "model.safetensors"), "neither a Hugging Face checkpoint"),
    "corrupt policy.json": ("export", _write("policy.json", "{oops"), "policy.json: unreadable policy description"),
    "policy without params": ("export", _drop("params"), "policy export has no params/ directory"),
    "corrupt params": ("export", _garble_params, "cannot restore the parameters"),
    "incomplete export": ("export", _drop("policy.json"), "an incomplete policy export (no policy.json"),
    "corrupt config": ("hf", _write("config.json", '{"architectures": ["GPT2LMHeadModel"]}'),
                       "unsupported architecture"),
    "no tokenizer": ("hf", _drop("tokenizer.json", "tokenizer_config.json"),
                     "no tokenizer files (tokenizer.json / tokenizer_config.json) next to the model"),
    "workdir without a complete step": ("workdir", lambda d: shutil.rmtree(d / "policy" / "1" / "params"),
                                        "without a complete policy step"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_model_paths_fail_at_start_with_one_clear_error(layouts, case):
    root, hf, export = layouts
    kind, edit, message = CASES[case]
    if kind is None:
        path = root / "absent"
    else:
        source = {"hf": hf, "export": export, "workdir": export.parent.parent}[kind]
        path = _variant(layouts, case.replace(" ", "_"), source, edit)
        if kind == "workdir":
            (path / "policy" / "1" / "policy.json").unlink()  # left half-written: no complete step at all
    with pytest.raises(ServeError) as err:
        PolicyServer(str(path)).start()
    assert message in str(err.value), str(err.value)
    assert str(path) in str(err.value) or case == "corrupt config"
    assert "\n" not in str(err.value)


def test_bad_options_are_named(layouts):
    _, hf, _ = layouts
    with pytest.raises(ServeError, match="--dtype must be one of"):
        PolicyServer(str(hf), dtype="int8").start()
    with pytest.raises(ServeError, match="--tokenizer '/nonexistent': no tokenizer files"):
        PolicyServer(str(hf), tokenizer="/nonexistent").start()
    with pytest.raises(ServeError, match="--max_batch must be >= 1"):
        PolicyServer(str(hf), max_batch=0).start()
    with pytest.raises(ServeError, match=r"--mesh 'data=2,tensor=4x': size of tensor must be an integer"):
        parse_mesh("data=2,tensor=4x")
    with pytest.raises(ServeError, match=r"--mesh 'pipeline=2': expected comma-separated axis=size"):
        parse_mesh("pipeline=2")
    with pytest.raises(ServeError, match="needs 16 devices, have 8"):
        parse_mesh("data=4,tensor=4")
    assert dict(parse_mesh("data=2,tensor=2").shape) == {"data": 2, "fsdp": 1, "tensor": 2}
    # A tokenizer given explicitly serves a checkpoint that has none of its own.
    bare = _variant(layouts, "bare", hf, _drop("tokenizer.json", "tokenizer_config.json"))
    tok = layouts[0] / "tok"
    tokenizer().save_pretrained(tok)
    srv = PolicyServer(str(bare), tokenizer=str(tok))
    assert srv.load().policy.model_id == "bare"


def _cli(*args, **kw):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    return subprocess.Popen([sys.executable, "-m", "w4s_jax.serve", *args], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_command_line_bad_input_is_one_line_and_status_2(layouts, capsys):
    root = layouts[0]
    with pytest.raises(SystemExit) as exit_:
        serve_main(["--model", str(root / "absent")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: --model {root / 'absent'}: no such directory"


def test_command_line_listens_and_exits_when_stdin_closes(layouts):
    root, hf, export = layouts
    proc = _cli(f"--model={export.parent.parent}", "--port=0")
    try:
        line = proc.stdout.readline()
        assert line.startswith("LISTENING "), (line, proc.stderr.read() if proc.poll() is not None else "")
        port = int(line.split()[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as r:
            assert json.loads(r.read())["data"][0]["id"] == "policy/1"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
