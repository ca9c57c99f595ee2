"""Trajectories -> token examples: chat-template the state, append the action and the end-of-turn token,
mark which tokens carry loss, truncate without ever cutting the action.

`loss_on="action"` (the paper): only the candidate action's tokens (and its end-of-turn token) carry loss.
`loss_on="all_assistant"` (the public W4S code): every assistant turn in the state carries loss as well.

Masks are stored per *target* position, ready for next-token training: `loss_mask[t]` says whether
predicting `ids[t + 1]` from `ids[: t + 1]` counts.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

from w4s_jax.trajectories import Record, TrajectoryError, read_trajectories

log = logging.getLogger(__name__)

LOSS_ON = ("action", "all_assistant")
TRUNCATE = ("middle", "left", "drop")


@dataclasses.dataclass
class Example:
    ids: np.ndarray          # int32 [n]: state then action then end-of-turn
    loss_mask: np.ndarray    # bool [n]: loss_mask[t] -> ids[t + 1] is a loss token (last entry False)
    reward: float
    state: int               # candidates of the same state share this index
    chosen: bool
    advantage: float = 0.0   # reward minus the mean reward of its state's candidates
    ref_logprob: float = 0.0  # sum of the frozen starting policy's log-probs of its loss tokens (dpo)

    def __len__(self) -> int:
        return len(self.ids)


class ChatEncoder:
    """Token ids of chat states with the tokenizer's template; assistant spans located by rendering
    prefixes (the template is applied to the conversation, never re-implemented)."""

    def __init__(self, tokenizer, eot_token: str | None = None):
        self.tok = tokenizer
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template")
        eot = eot_token or "<|im_end|>"
        eot_id = tokenizer.convert_tokens_to_ids(eot)
        if eot_id is None or eot_id == getattr(tokenizer, "unk_token_id", -1):
            eot_id = tokenizer.eos_token_id
        if eot_id is None:
            raise ValueError(f"end-of-turn token {eot!r} is not in the vocabulary and there is no eos token")
        self.eot_id = int(eot_id)

    def render(self, messages: Sequence[dict], generation_prompt: bool) -> list[int]:
        ids = self.tok.apply_chat_template(list(messages), tokenize=True,
                                           add_generation_prompt=generation_prompt)
        if hasattr(ids, "keys"):  # transformers >= 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def action_ids(self, action: str) -> list[int]:
        return [int(i) for i in self.tok(action, add_special_tokens=False)["input_ids"]] + [self.eot_id]

    def state(self, messages: Sequence[dict], assistant_spans: bool) -> tuple[list[int], list[tuple[int, int]]]:
        """Prompt ids (ending with the assistant header) and, if asked, the [start, end) token spans of the
        earlier assistant turns (content through their end-of-turn token)."""
        ids = self.render(messages, generation_prompt=True)
        spans = []
        if assistant_spans:
            for i, m in enumerate(messages):
                if m["role"] != "assistant":
                    continue
                start = len(self.render(messages[:i], generation_prompt=True))
                upto = self.render(messages[: i + 1], generation_prompt=False)
                if ids[: len(upto)] != upto:
                    raise ValueError("the chat template does not render conversations prefix-consistently; "
                                     "use loss_on='action'")
                end = len(upto)
                while end > start and upto[end - 1] != self.eot_id:
                    end -= 1
                spans.append((start, end if end > start else len(upto)))
        return ids, spans


def _cut(length: int, budget: int, policy: str, keep_head: int) -> tuple[int, int] | None:
    """The [from, to) token range to remove so the state fits `budget`; None drops the example."""
    if length <= budget:
        return (0, 0)
    if policy == "drop" or budget <= 0:
        return None
    if policy == "left" or keep_head >= budget:
        return (0, length - budget)
    # middle: keep the head (system prompt, task) and the most recent history
    return (keep_head, keep_head + length - budget)


def build_examples(records: Sequence[Record], encoder: ChatEncoder, *, max_len: int, loss_on: str = "action",
                   truncate: str = "middle", keep_head: int = 256, include_failed: bool = False,
                   keep: Callable[[Record], bool] | None = None, report: dict | None = None) -> list[Example]:
    """Tokenized examples for the records that pass the filters. `report` counts what was dropped,
    shortened or filtered (truncation never cuts the action: an action that does not fit drops the example)."""
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    if truncate not in TRUNCATE:
        raise ValueError(f"truncate must be one of {TRUNCATE}, got {truncate!r}")
    report = {} if report is None else report
    for k in ("examples", "filtered_failed", "filtered_objective", "dropped_too_long", "shortened"):
        report.setdefault(k, 0)
    state_cache: dict[str, tuple[list[int], list]] = {}
    state_index: dict[tuple, int] = {}
    out: list[Example] = []
    for r in records:
        if r.status != "ok" and not include_failed:
            report["filtered_failed"] += 1
            continue
        if keep is not None and not keep(r):
            report["filtered_objective"] += 1
            continue
        key = json.dumps(r.messages, sort_keys=True)
        if key not in state_cache:
            ids, spans = encoder.state(r.messages, assistant_spans=(loss_on == "all_assistant"))
            state_loss = np.zeros(len(ids), bool)
            for s, e in spans:
                state_loss[s:e] = True
            state_cache[key] = (ids, state_loss)
        state, state_loss = state_cache[key]
        action = encoder.action_ids(r.action)
        cut = _cut(len(state), max_len - len(action), truncate, keep_head)
        if cut is None:
            report["dropped_too_long"] += 1
            continue
        if cut[1] > cut[0]:
            report["shortened"] += 1
        keep_tok = np.ones(len(state), bool)
        keep_tok[cut[0]:cut[1]] = False
        ids = np.concatenate([np.asarray(state, np.int32)[keep_tok], np.asarray(action, np.int32)])
        token_loss = np.concatenate([state_loss[keep_tok], np.ones(len(action), bool)])  # loss targets
        loss_mask = np.zeros(len(ids), bool)
        loss_mask[:-1] = token_loss[1:]
        st = state_index.setdefault(r.state_key, len(state_index))
        out.append(Example(ids=ids, loss_mask=loss_mask, reward=r.reward, state=st, chosen=r.chosen))
    report["examples"] = len(out)
    report["states"] = len({e.state for e in out})
    set_advantages(out)
    return out


def set_advantages(examples: Sequence[Example]) -> None:
    """advantage = reward - mean reward of the candidates of the same state (among the kept examples)."""
    groups = defaultdict(list)
    for e in examples:
        groups[e.state].append(e.reward)
    means = {s: float(np.mean(v)) for s, v in groups.items()}
    for e in examples:
        e.advantage = e.reward - means[e.state]


def preference_pairs(examples: Sequence[Example], *, margin: float = 0.0,
                     max_pairs_per_state: int = 4) -> list[tuple[int, int]]:
    """(higher-reward index, lower-reward index) pairs of candidates of the same state, in a fixed order:
    best against worst first."""
    groups = defaultdict(list)
    for i, e in enumerate(examples):
        groups[e.state].append(i)
    pairs = []
    for s in sorted(groups):
        idx = sorted(groups[s], key=lambda i: (-examples[i].reward, i))
        cands = [(hi, lo) for a, hi in enumerate(idx) for lo in reversed(idx[a + 1:])
                 if examples[hi].reward - examples[lo].reward > margin]
        pairs.extend(cands[:max_pairs_per_state])
    return pairs


def split_by_episode(records: Sequence[Record], fraction: float) -> tuple[list[Record], list[Record]]:
    """(training records, held-out records): whole episodes are held out, never single lines, so no state
    is in both. An episode is held out when a hash of its episode_id falls below `fraction`: the same
    episodes are held out in every run on the same data (whatever its seed or objective), and an episode
    never changes side as more data is collected. At least one episode is held out when fraction > 0."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return list(records), []
    u = {e: int.from_bytes(hashlib.sha256(e.encode()).digest()[:8], "big") / 2.0**64
         for e in {r.episode_id for r in records}}
    held = {e for e, x in u.items() if x < fraction} or {min(u, key=u.get)}
    if len(held) == len(u):
        raise ValueError(f"holding out {fraction} of {len(u)} episode(s) leaves none to train on")
    return [r for r in records if r.episode_id not in held], [r for r in records if r.episode_id in held]


def examples_from_records(records: Sequence[Record], tokenizer, *, max_len: int, loss_on: str = "action",
                          truncate: str = "middle", keep_head: int = 256, include_failed: bool = False,
                          eot_token: str | None = None, keep: Callable[[Record], bool] | None = None,
                          report: dict | None = None, source: str = "") -> list[Example]:
    """Filter and tokenize records; an empty result is an error that says why (naming `source`)."""
    report = {} if report is None else report
    report.setdefault("records", len(records))
    examples = build_examples(records, ChatEncoder(tokenizer, eot_token), max_len=max_len, loss_on=loss_on,
                              truncate=truncate, keep_head=keep_head, include_failed=include_failed,
                              keep=keep, report=report)
    if not examples:
        raise TrajectoryError(
            f"no training examples left from {source!r}: {report['records']} records read, "
            f"{report['filtered_failed']} failed candidates skipped, {report['filtered_objective']} removed by "
            f"the objective's filter, {report['dropped_too_long']} longer than max_len={max_len}")
    return examples


def load_examples(path, tokenizer, *, report: dict | None = None, **kwargs) -> list[Example]:
    """Read, validate, filter and tokenize (keyword arguments as `examples_from_records`)."""
    report = {} if report is None else report
    return examples_from_records(read_trajectories(path, report), tokenizer, report=report, source=str(path),
                                 **kwargs)
