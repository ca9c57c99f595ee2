"""What the server serves: a Hugging Face checkpoint directory, one policy export (`<workdir>/policy/<step>`),
or a trainer workdir, whose newest complete policy step is served and replaced when a newer one appears.

A step directory counts only once its `policy.json` exists (exports are renamed into place whole, and older
ones wrote that file last), so a half-written export is never loaded. A complete step that fails to load
is reported and skipped, never retried; the server goes on with what it has.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os

import jax
import jax.numpy as jnp

from w4s_jax.models import CheckpointError, ConfigError, load_pretrained, load_tokenizer, make_mesh
from w4s_jax.models.hf_io import INDEX_FILE, SINGLE_FILE
from w4s_jax.models.sharding import MESH_AXES
from w4s_jax.sampling import SAMPLING_RULES, chat_stop_ids
from w4s_jax.train.export import POLICY_FILE, has_tokenizer, load_policy, read_policy_info, trainer_tokenizer_dir

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")


class ServeError(ValueError):
    """A model path, tokenizer or server option that cannot be served; the message names it."""


@dataclasses.dataclass
class Policy:
    """A loaded model with everything a chat request needs."""

    model: object
    tokenizer: object
    stop_ids: list[int]
    model_id: str            # what replies name in `model`: the HF directory's name, or "policy/<step>"
    step: int | None         # the policy step (None for an HF checkpoint)
    path: str

    @property
    def context(self) -> int:
        return int(self.model.config.max_position_embeddings)


def parse_mesh(spec: str | None):
    """`data=2,tensor=4` (axes data, fsdp, tensor; unnamed ones are 1; one may be -1 = the rest) -> Mesh on
    the first devices, or None for no mesh."""
    if not spec:
        return None
    sizes = {}
    for part in spec.split(","):
        key, eq, value = part.strip().partition("=")
        if not eq or key not in MESH_AXES:
            raise ServeError(f"--mesh {spec!r}: expected comma-separated axis=size with axes {MESH_AXES}, "
                             f"got {part!r}")
        try:
            sizes[key] = int(value)
        except ValueError:
            raise ServeError(f"--mesh {spec!r}: size of {key} must be an integer, got {value!r}") from None
    sizes = {a: sizes.get(a, 1) for a in MESH_AXES}
    devices = jax.devices()
    if -1 not in sizes.values():
        total = sizes["data"] * sizes["fsdp"] * sizes["tensor"]
        if total < 1 or total > len(devices):
            raise ServeError(f"--mesh {spec!r} needs {total} devices, have {len(devices)}")
        devices = devices[:total]
    try:
        return make_mesh(sizes["data"], sizes["fsdp"], sizes["tensor"], devices=devices)
    except ValueError as e:
        raise ServeError(f"--mesh {spec!r}: {e}") from None


def _is_hf_dir(path: str) -> bool:
    return os.path.exists(os.path.join(path, "config.json")) and (
        os.path.exists(os.path.join(path, SINGLE_FILE)) or os.path.exists(os.path.join(path, INDEX_FILE)))


def _stored_dtype(path: str) -> str:
    """The dtype a checkpoint was saved in (policy.json, else config.json's torch_dtype / dtype)."""
    if os.path.exists(os.path.join(path, POLICY_FILE)):
        return read_policy_info(path)["param_dtype"]
    try:
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        stored = cfg.get("torch_dtype") or cfg.get("dtype") or "float32"
    except (OSError, json.JSONDecodeError, AttributeError):
        stored = "float32"
    return stored if stored in DTYPES[1:] else "float32"


class PolicySource:
    """Resolves PATH once (kind: "hf", "export" or "workdir") and loads policies from it."""

    def __init__(self, path: str, *, dtype: str = "auto", mesh=None, tokenizer: str | None = None,
                 served_model_name: str | None = None):
        if dtype not in DTYPES:
            raise ServeError(f"--dtype must be one of {DTYPES}, got {dtype!r}")
        if tokenizer is not None and not (os.path.isdir(tokenizer) and has_tokenizer(tokenizer)):
            raise ServeError(f"--tokenizer {tokenizer!r}: no tokenizer files (tokenizer.json / "
                             f"tokenizer_config.json) there")
        self.path = os.path.abspath(os.fspath(path))
        self.dtype, self.mesh, self.tokenizer_dir = dtype, mesh, tokenizer
        self.served_model_name = served_model_name
        self.failed: set[int] = set()   # complete steps that did not load: never retried
        if not os.path.isdir(self.path):
            raise ServeError(f"--model {self.path}: no such directory")
        if os.path.exists(os.path.join(self.path, POLICY_FILE)):
            self.kind = "export"
        elif _is_hf_dir(self.path):
            self.kind = "hf"
        elif os.path.isdir(os.path.join(self.path, "policy")):
            self.kind = "workdir"
        elif os.path.exists(os.path.join(self.path, "params")) and os.path.exists(os.path.join(self.path,
                                                                                             "config.json")):
            raise ServeError(f"--model {self.path}: an incomplete policy export (no {POLICY_FILE}; still being "
                             f"written, or its writer died)")
        else:
            raise ServeError(f"--model {self.path}: neither a Hugging Face checkpoint (config.json + "
                             f"{SINGLE_FILE} or {INDEX_FILE}), a policy export ({POLICY_FILE} + params/) nor a "
                             f"trainer workdir (policy/<step>/)")

    # ----- steps of a workdir
    def complete_steps(self) -> list[int]:
        """Complete policy steps of the workdir, newest first (not those that failed to load)."""
        root = os.path.join(self.path, "policy")
        try:
            names = os.listdir(root)
        except FileNotFoundError:
            return []
        steps = [int(n) for n in names if n.isdigit() and os.path.exists(os.path.join(root, n, POLICY_FILE))]
        return sorted((s for s in steps if s not in self.failed), reverse=True)

    def newer_than(self, step: int | None) -> int | None:
        """The newest complete step above `step` (workdir only), or None."""
        if self.kind != "workdir":
            return None
        steps = self.complete_steps()
        return steps[0] if steps and (step is None or steps[0] > step) else None

    # ----- loading
    def load_initial(self) -> Policy:
        if self.kind != "workdir":
            return self._load(self.path)
        steps = self.complete_steps()
        if not steps:
            raise ServeError(f"--model {self.path}: trainer workdir without a complete policy step in "
                             f"{os.path.join(self.path, 'policy')} (a step is complete once its {POLICY_FILE} "
                             f"exists)")
        return self.load_step(steps[0])

    def load_step(self, step: int) -> Policy:
        try:
            return self._load(os.path.join(self.path, "policy", str(step)), step=step)
        except ServeError:
            self.failed.add(step)
            raise

    def _tokenizer_dir(self, path: str) -> str:
        if self.tokenizer_dir:
            return self.tokenizer_dir
        if has_tokenizer(path):
            return path
        if self.kind == "workdir":
            found = trainer_tokenizer_dir(self.path)
            if found:
                return found
        raise ServeError(f"{path}: no tokenizer files (tokenizer.json / tokenizer_config.json) next to the "
                         f"model; export the policy with its tokenizer or pass --tokenizer=DIR")

    def _load(self, path: str, step: int | None = None) -> Policy:
        tok_dir = self._tokenizer_dir(path)
        try:
            is_export = os.path.exists(os.path.join(path, POLICY_FILE))
            if is_export:
                step = int(read_policy_info(path)["step"]) if step is None else step
            dtype = jnp.dtype(_stored_dtype(path) if self.dtype == "auto" else self.dtype)
            rules = SAMPLING_RULES
            if is_export:
                model = load_policy(path, dtype=dtype, param_dtype=dtype, mesh=self.mesh, rules=rules)
            else:
                model = load_pretrained(path, dtype=dtype, param_dtype=dtype, mesh=self.mesh, rules=rules)
        except (CheckpointError, ConfigError) as e:
            raise ServeError(str(e)) from None
        try:
            tokenizer = load_tokenizer(tok_dir)
        except Exception as e:  # transformers raises OSError, ValueError, ... for a broken directory
            raise ServeError(f"{tok_dir}: cannot load the tokenizer ({type(e).__name__}: {e})") from None
        if getattr(tokenizer, "chat_template", None) is None:
            raise ServeError(f"{tok_dir}: the tokenizer has no chat template")
        if len(tokenizer) > model.config.vocab_size:
            log.warning("%s: tokenizer has %d tokens, the model's vocabulary %d", tok_dir, len(tokenizer),
                        model.config.vocab_size)
        name = self.served_model_name or os.path.basename(self.path)
        model_id = name if step is None else f"{name}/policy/{step}" if self.served_model_name else f"policy/{step}"
        stops = chat_stop_ids(tokenizer, model, path)
        log.info("serving %s from %s (%s, stop ids %s)", model_id, path, dtype.name, stops)
        return Policy(model=model, tokenizer=tokenizer, stop_ids=stops, model_id=model_id, step=step, path=path)
