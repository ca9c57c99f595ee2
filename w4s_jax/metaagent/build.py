"""Build (once) and cache the tiny meta-agent: corpus -> tokenizer -> Qwen2 init -> `sft` warm start -> HF dir.

    path = build_or_load(tiny_meta_agent_config())   # an HF checkpoint directory

The result is a Hugging Face directory (config.json, model.safetensors, tokenizer files with the chat
template, generation_config.json, build.json) that `w4s_jax.models.load_pretrained`, transformers and
`python -m w4s_jax.serve --model=PATH` load. It lives in `<root>/meta_agent/<key>`, root = `cache_dir`,
else $W4S_CACHE_DIR, else ~/.cache/w4s_jax; the key is a hash of the config and of the sources that
decide the corpus, so a changed setting or generator builds afresh and a rerun loads in milliseconds.

A build runs in a child process (`python -m w4s_jax.metaagent.build --out=TMP`), so the JAX memory of
training is released when it ends, and writes into a temporary sibling directory renamed into place only
when complete (build.json, written last, marks it): an interrupted build is never used, and a lock file
keeps two processes from building the same key at once.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

log = logging.getLogger(__name__)

BUILD_FILE = "build.json"
# The modules whose code decides what is built (their source is part of the cache key).
_SOURCES = ("space.py", "render.py", "corpus.py", "tokenizer.py", "build.py")


def cache_key(cfg) -> str:
    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _SOURCES:
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    from w4s_jax.rollout import prompts  # the states' text
    with open(prompts.__file__, "rb") as f:
        h.update(f.read())
    return h.hexdigest()[:16]


def cache_root(cache_dir: str | None = None) -> str:
    root = cache_dir or os.environ.get("W4S_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "w4s_jax")
    return os.path.join(os.path.abspath(root), "meta_agent")


def is_complete(path: str) -> bool:
    return os.path.isfile(os.path.join(path, BUILD_FILE))


@contextlib.contextmanager
def _locked(path: str):
    import fcntl

    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_or_load(cfg=None, cache_dir: str | None = None, *, quiet: bool = False) -> str:
    """The HF directory of the meta-agent `cfg` describes (default: tiny_meta_agent_config()), built if
    the cache does not hold it yet."""
    if cfg is None:
        from .config import tiny_meta_agent_config
        cfg = tiny_meta_agent_config()
    root = cache_root(cache_dir)
    key = cache_key(cfg)
    path = os.path.join(root, key)
    if is_complete(path):
        return path
    os.makedirs(root, exist_ok=True)
    with _locked(os.path.join(root, f".{key}.lock")):
        if is_complete(path):       # another process built it while we waited
            return path
        if os.path.exists(path):    # an incomplete directory (not one of ours: ours are renamed whole)
            shutil.rmtree(path)
        tmp = tempfile.mkdtemp(prefix=f".{key}.", suffix=".partial", dir=root)
        try:
            cmd = [sys.executable, "-m", "w4s_jax.metaagent.build", "--out", tmp,
                   "--config_json", json.dumps(cfg.to_dict())]
            if not quiet:
                print(f"building the tiny meta-agent into {path} (cached for later runs)", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else None,
                                  stderr=subprocess.PIPE if quiet else None, text=True)
            if proc.returncode != 0 or not is_complete(tmp):
                detail = (proc.stderr or "")[-3000:] if quiet else "see the messages above"
                raise RuntimeError(f"building the tiny meta-agent failed (exit status {proc.returncode}): {detail}")
            os.rename(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


# ------------------------------------------------------------------------------------------------------
# The build itself (in the child process)

def _trainer_preset(name: str = "tiny"):
    """configs/train.py's preset, from the checkout holding this package (editable install) or the current
    directory (a launch script run from its checkout)."""
    import importlib.util

    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for root in (here, os.getcwd()):
        path = os.path.join(root, "configs", "train.py")
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("w4s_configs_train", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.get_config(name)
    raise FileNotFoundError("configs/train.py not found beside the w4s_jax package or in the current directory; "
                            "run from the w4s-jax checkout")


def train_config(cfg, *, workdir: str, model_path: str, data_path: str, progress: bool = True):
    """The trainer config of the warm start: configs/train.py:tiny with the model, data and schedule of `cfg`
    and the `sft` objective on the corpus (every record is chosen)."""
    c = _trainer_preset("tiny")
    c.unlock()
    c.workdir = workdir
    c.seed = cfg.seed
    c.progress = progress
    c.model.path = model_path
    c.tokenizer.path = model_path
    c.data.path = data_path
    c.data.synthetic = False
    c.data.max_len = cfg.train.max_len
    c.data.keep_head = cfg.train.keep_head
    c.data.truncate = "middle"
    c.data.min_bucket = cfg.train.min_bucket
    # a loss buffer as large as the batch: one compiled step (the head on a few padded rows costs little here)
    c.data.min_loss_cap = cfg.train.batch_size * cfg.train.max_len
    c.objective.name = "sft"
    c.total_steps = cfg.train.steps
    c.batch_size = cfg.train.batch_size
    c.optim.lr = cfg.train.lr
    c.optim.warmup_steps = cfg.train.warmup_steps
    c.log_every = 10
    c.checkpoint.interval = cfg.train.steps      # one checkpoint, at the end
    c.checkpoint.async_save = False
    c.mesh.devices = 1
    c.export_hf = True
    c.lock()
    return c


def model_config(cfg, vocab_size: int, ids: dict):
    from w4s_jax.models import ModelConfig

    m = cfg.model
    return ModelConfig(vocab_size=vocab_size, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
                       num_layers=m.num_layers, num_heads=m.num_heads, num_kv_heads=m.num_kv_heads,
                       head_dim=m.head_dim, rope_theta=m.rope_theta, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       max_position_embeddings=m.context, family="qwen2",
                       bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"]).validate("meta-agent config")


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def build(cfg, out: str, *, progress: bool = True) -> dict:
    """Build the meta-agent into `out` (an empty directory): the HF files, then build.json last."""
    from w4s_jax.tasks import get

    from .corpus import corpus_records
    from .tokenizer import special_ids, train_tokenizer

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    work = os.path.join(out, ".work")
    os.makedirs(work, exist_ok=True)
    tasks = [get(n.strip()) for n in cfg.corpus.tasks.split(",") if n.strip()]
    corpus = os.path.join(work, "corpus.jsonl")
    tok_texts: list[str] = []
    with open(corpus, "w") as f:
        for i, rec in enumerate(corpus_records(cfg.corpus.examples, tasks=tasks, seed=cfg.seed,
                                               max_history=cfg.corpus.max_history)):
            f.write(json.dumps(rec) + "\n")
            if i < cfg.corpus.tokenizer_examples:
                tok_texts += [m["content"] for m in rec["messages"]] + [rec["action"]]
    timings["corpus_s"] = time.perf_counter() - t0
    log.info("corpus: %d records in %.1f s", cfg.corpus.examples, timings["corpus_s"])

    t = time.perf_counter()
    tokenizer = train_tokenizer(tok_texts, cfg.tokenizer.vocab_size, cfg.tokenizer.window.to_dict())
    del tok_texts
    init_dir = os.path.join(work, "init")
    tokenizer.save_pretrained(init_dir)
    timings["tokenizer_s"] = time.perf_counter() - t
    log.info("tokenizer: %d tokens in %.1f s", len(tokenizer), timings["tokenizer_s"])

    t = time.perf_counter()
    import jax.numpy as jnp

    from w4s_jax.models import init_model, save_pretrained
    from w4s_jax.train.trainer import train

    mcfg = model_config(cfg, -(-len(tokenizer) // 64) * 64, special_ids(tokenizer))  # rows: a multiple of 64
    save_pretrained(init_model(mcfg, seed=cfg.seed, dtype=jnp.float32), init_dir)
    tcfg = train_config(cfg, workdir=os.path.join(work, "train"), model_path=init_dir, data_path=corpus,
                        progress=progress)
    summary = train(tcfg)
    timings["train_s"] = time.perf_counter() - t
    curve = []
    with open(os.path.join(work, "train", "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            curve.append({k: m[k] for k in ("step", "nll", "tokens_per_s") if k in m})
    hf = os.path.join(work, "train", "hf")
    for name in os.listdir(hf):
        shutil.move(os.path.join(hf, name), os.path.join(out, name))
    _write_json(os.path.join(out, "generation_config.json"),
                {"bos_token_id": mcfg.bos_token_id, "eos_token_id": [mcfg.eos_token_id],
                 "pad_token_id": mcfg.bos_token_id})
    shutil.rmtree(work)
    timings["total_s"] = time.perf_counter() - t0
    info = {"config": cfg.to_dict(), "params": mcfg.num_params(), "vocab_size": mcfg.vocab_size,
            "timings": timings, "final_metrics": summary.get("metrics", {}), "curve": curve, "data": summary.get("data", {}),
            "load_average": os.getloadavg()}
    _write_json(os.path.join(out, BUILD_FILE), info)
    return info


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Build the tiny meta-agent (default: into the cache, printing its path)")
    p.add_argument("--out", default=None, help="build into this empty directory instead of the cache (no reuse)")
    p.add_argument("--config_json", default=None, help="the build config as JSON (default: tiny_meta_agent_config)")
    p.add_argument("--cache_dir", default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ml_collections

    from .config import tiny_meta_agent_config

    cfg = tiny_meta_agent_config()
    if a.config_json:
        cfg = ml_collections.ConfigDict(json.loads(a.config_json))
    if a.out:
        build(cfg, a.out)
    else:
        print(build_or_load(cfg, a.cache_dir))


if __name__ == "__main__":
    main()
