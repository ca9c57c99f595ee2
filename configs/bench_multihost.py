"""launch/bench_multihost.py: per-step overhead of training over several processes.
`--config=configs/bench_multihost.py:<preset>` with presets

  tiny        the tiny model, 8 x 128 tokens: 2 processes x 4 CPU devices vs 1 process x 8 (seconds)
  bench-50m   bench-50m (42.8M params, 152k vocab), 8 x 128 tokens, the same layouts (minutes on 2 cores)

`layouts`: processes x devices per process, comma-separated, the first is the reference (same total device
count; on a CPU, devices are --xla_force_host_platform_device_count fakes and the processes talk over gloo).
`mesh_data`: the mesh's data axis (1: FSDP over all devices, parameters gathered across processes every
step; 2: data parallel across the 2 processes, FSDP within each, one gradient reduction across processes).
Shared bench keys (workdir, seed, reps): w4s_jax/bench/config.py.
"""
from w4s_jax.bench.config import bench_config

PRESETS = {
    "tiny": dict(model="tiny", batch=8, seq=128, action_frac=0.3, steps=10, layouts="1x8,2x4", mesh_data=1),
    "bench-50m": dict(model="bench-50m", batch=8, seq=128, action_frac=0.3, steps=2, layouts="1x8,2x4", mesh_data=1),
}


def get_config(preset=None):
    return bench_config("bench_multihost", PRESETS, preset)
