"""Simulated executor: a local OpenAI-compatible server with scripted replies and fault injection, and the
simulated strong model of a task's items (`--simulate=TASK`; the generative model is in `model.py`)."""
from .script import Responder, load_script
from .server import FaultPlan, SimServer, simulated_server
from .simulated import SIM_MODEL, SimulatedModel

__all__ = ["SIM_MODEL", "FaultPlan", "Responder", "SimServer", "SimulatedModel", "load_script", "simulated_server"]
