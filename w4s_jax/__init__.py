"""w4s-jax: Weak-for-Strong Harnessing in JAX/Flax."""

__version__ = "0.1.0"
