"""Shared test setup.

Eight fake CPU devices let the sharding tests build real meshes (data, fsdp, tensor); the flag must be
set before jax is imported anywhere in the test process.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
