"""Benchmarks behind launch/bench_*.py: each measures ours against a reference in the same run (or, on an
accelerator, against the card's peak), one module per benchmark. Shared by all: config.py (the config
keys every benchmark has, running a config, the results file), timing.py (interleaved repetitions with
min/median/max, the load verdict), isolated.py (one benchmark in its own process), and w4s_jax/flops.py
(FLOPs, roofline bytes, accelerator peaks; also the trainer's MFU). gpu.py runs every accelerator figure."""
