"""launch/bench_train.py on the tiny model (configs/bench_train.py:tiny-lora): our LoRA train step against
the public W4S formulation with peft LoRA of the same rank, alpha and targets."""
from bench_support import run_bench
from w4s_jax.bench import train


def test_lora_train_step_vs_peft_reference(tmp_path):
    res = run_bench(train.main, "bench_train", "tiny-lora", tmp_path, reps=2)
    assert res["lora"] and res["lora_rank"] == 16
    # The first step of each side, from the same base weights with B = 0, gives the same loss (the run
    # raises otherwise): what is timed is the same objective on the same data.
    assert abs(res["loss_ours"] - res["loss_reference"]) <= 2e-3 * (1 + abs(res["loss_reference"]))
    assert 0.2 < res["loss_tokens"] / res["tokens"] < 0.4  # 30% action
    # One jitted step against a per-example PyTorch + peft loop on a 0.1M-parameter model: 2.6-3.4x at load
    # 1 on 2 cores. Only "not slower" is asserted: a ratio this small swings with the machine's load.
    assert res["speedup"]["median"] >= 1.0
    assert res["ours_tok_s"]["reps"] == 2 and res["ours_tok_s"]["min"] <= res["ours_tok_s"]["max"]
