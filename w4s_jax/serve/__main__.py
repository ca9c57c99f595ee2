"""`python -m w4s_jax.serve --model=PATH ...`: run the policy server in its own process."""
from w4s_jax.serve.server import main

main()
