"""The ``/v1/embeddings`` reply: unit-length vectors derived from a hash of each input, as
float lists or base64 of little-endian float32."""

from __future__ import annotations

import base64
import math
import struct
from hashlib import blake2b
from typing import Any

from batchgate.sim.config import SimConfig
from batchgate.sim.envelopes import InvalidRequest
from batchgate.sim.replies import positive_int, prompt_inputs, require_model

DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 4096


def embedding_vector(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A deterministic unit vector for ``text``. Each value is already rounded to float32,
    so the float form and the base64 (float32) form decode to exactly the same numbers."""
    data = text.encode("utf-8", "surrogatepass")
    raw = b""
    block = 0
    while len(raw) < dimensions * 2:
        raw += blake2b(data, digest_size=64, salt=block.to_bytes(16, "little")).digest()
        block += 1
    values = [v - 32767.5 for v in struct.unpack_from(f"<{dimensions}H", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


def embeddings(req: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    """An embeddings ``list``: one ``embedding`` per input (string, strings or token arrays),
    ``dimensions`` floats each (default 8); ``encoding_format: "base64"`` packs them."""
    model = require_model(req, config)
    inputs = prompt_inputs(req.get("input"), "input")
    dimensions = positive_int(req, "dimensions", default=DEFAULT_DIMENSIONS) or 1
    if dimensions > MAX_DIMENSIONS:
        raise InvalidRequest(f"'dimensions' must be at most {MAX_DIMENSIONS}.", param="dimensions")
    encoding = req.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
        )
    data: list[dict[str, Any]] = []
    for index, (text, _) in enumerate(inputs):
        vector = embedding_vector(text, dimensions)
        value: list[float] | str = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = sum(count for _, count in inputs)
    return {
        "object": "list",
        "model": model,
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
