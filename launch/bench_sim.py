"""Simulated-executor speed: server CPU per request and per completion of the simulated strong model against
the scripted server on the same recorded requests (w4s_jax/bench/sim.py).

    python launch/bench_sim.py                                          # configs/bench_sim.py:default
    python launch/bench_sim.py --config.task=synth_units --config.reps=5
"""
from w4s_jax.bench import sim
from w4s_jax.cli import common

CONFIG = common.define_config("bench_sim")

if __name__ == "__main__":
    common.run(lambda argv: sim.main(CONFIG.value))
