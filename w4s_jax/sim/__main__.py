"""`python -m w4s_jax.sim ...`: run the simulated executor server in its own process."""
from .server import main

main()
