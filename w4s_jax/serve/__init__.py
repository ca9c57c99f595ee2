"""OpenAI-compatible server over the JAX sampler: dynamic request batching and policy hot reload.

    with PolicyServer("runs/train") as srv:          # an HF dir, a policy export or a trainer workdir
        client = openai.OpenAI(base_url=srv.base_url, api_key="none")

or `python -m w4s_jax.serve --model=PATH [--port=0]` (prints `LISTENING <port>`, exits when stdin closes).
"""
from w4s_jax.serve.policy import Policy, PolicySource, ServeError, parse_mesh
from w4s_jax.serve.protocol import RequestError
from w4s_jax.serve.server import PolicyServer, main

__all__ = ["Policy", "PolicyServer", "PolicySource", "RequestError", "ServeError", "main", "parse_mesh"]
