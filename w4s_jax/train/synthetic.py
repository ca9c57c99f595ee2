"""A small synthetic W4S trajectory file and a tiny local tokenizer, for the `tiny` preset and the tests.

The tokenizer is a byte-level BPE trained here on a fixed corpus (no hub access) with a ChatML chat
template and Qwen's special tokens, so the data path runs exactly as with a real Qwen tokenizer.
The trajectories follow the schema in DESIGN.md: each turn's candidates are drawn from a fixed pool of
workflows whose rewards differ, so a policy trained with RLAO should come to prefer the rewarded ones.
"""
from __future__ import annotations

import json
import os

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

SYSTEM = "You design Python workflows that call a strong executor model to solve tasks."
TASKS = ["math word problems", "reading comprehension", "code generation", "multiple choice science"]
# (action text, reward): the pool candidates are drawn from
ACTION_POOL = [
    ("Analysis: ask for steps, then vote.\n```python\ndef solver(agent, task):\n"
     "    outs = agent.call_llm(messages=[task], num_of_response=3)\n    return max(set(outs), key=outs.count)\n```", 1.0),
    ("Analysis: verify the answer with code.\n```python\ndef solver(agent, task):\n"
     "    code = agent.call_llm(messages=[task])[0]\n    return agent.execute_code(code)\n```", 0.5),
    ("Analysis: answer directly.\n```python\ndef solver(agent, task):\n    return task\n```", 0.0),
    ("Analysis: guess.\n```python\ndef solver(agent, task):\n    return 42\n```", 0.0),
]


def _corpus() -> list[str]:
    text = [SYSTEM, *TASKS, *(a for a, _ in ACTION_POOL),
            "Task: Validation accuracy Feedback: failures on items previous workflow improve it"]
    text += ["user assistant system " * 3, "0123456789 .,:;()[]{}=+-*/_'\"#\n    "]
    return text * 20


def build_tiny_tokenizer(path: str, vocab_size: int = 400, save: bool = True):
    """Train and save (to `path`, unless `save` is False) a byte-level BPE tokenizer with a ChatML template;
    returns it. Training is deterministic, so every host of a run builds the same one (one of them saves)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.chat_template = CHATML_TEMPLATE
    if save:
        os.makedirs(path, exist_ok=True)
        fast.save_pretrained(path)
    return fast


def synthetic_records(*, episodes: int = 6, turns: int = 2, candidates: int = 4, seed: int = 0,
                      run_id: str = "synthetic") -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for ep in range(episodes):
        task = TASKS[ep % len(TASKS)]
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Task: {task} #{ep}. Write a workflow."}]
        for turn in range(turns):
            picks = rng.choice(len(ACTION_POOL), size=candidates, replace=candidates > len(ACTION_POOL))
            best = max(range(candidates), key=lambda c: (ACTION_POOL[picks[c]][1], -c))
            for c in range(candidates):
                action, reward = ACTION_POOL[picks[c]]
                out.append({
                    "schema": 1, "run_id": run_id, "episode_id": f"ep{ep}", "task": task, "turn": turn,
                    "candidate": c, "messages": [dict(m) for m in messages], "action": action,
                    "reward": reward, "valid_acc": 0.3 + 0.5 * reward, "chosen": c == best, "status": "ok",
                    "usage": {"executor_prompt_tokens": 0, "executor_completion_tokens": 0, "cost_usd": 0.0},
                    "action_logprob": None, "meta": {"seed": seed},
                })
            messages = messages + [{"role": "assistant", "content": ACTION_POOL[picks[best]][0]},
                                   {"role": "user", "content": f"Feedback: Validation accuracy "
                                                               f"{0.3 + 0.5 * ACTION_POOL[picks[best]][1]:.2f}. "
                                                               f"Improve it."}]
    return out


def write_synthetic_trajectories(path: str, **kwargs) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        for r in synthetic_records(**kwargs):
            f.write(json.dumps(r) + "\n")
    return path
