"""Simulated executor: a local OpenAI-compatible server with scripted replies and fault injection."""
from .script import Responder, load_script
from .server import FaultPlan, SimServer

__all__ = ["FaultPlan", "Responder", "SimServer", "load_script"]
