"""A fast simulated LLM upstream, OpenAI-compatible (chat, completions, embeddings, responses,
models) and Anthropic-compatible (``POST /v1/messages``), with injectable latency, faults
(529 ``overloaded_error`` included) and overload, for tests, the quickstart and benchmarks.

Run it with ``run_simulator`` (blocking) or ``start_in_thread`` (tests); steer a running one
over HTTP with ``GET /_sim/stats``, ``POST /_sim/reset`` and ``POST /_sim/config``.
"""

from batchgate.sim.config import SimConfig
from batchgate.sim.faults import Fault, FaultPicker
from batchgate.sim.runner import SimHandle, SimServer, run_simulator, serve, start_in_thread
from batchgate.sim.server import Reply, SimApp

__all__ = [
    "Fault",
    "FaultPicker",
    "Reply",
    "SimApp",
    "SimConfig",
    "SimHandle",
    "SimServer",
    "run_simulator",
    "serve",
    "start_in_thread",
]
