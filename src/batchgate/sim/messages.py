"""The ``/v1/messages`` reply (Anthropic Messages API): the text a chat completion of the same
conversation gets, in Anthropic's ``message`` shape. Validation errors use Anthropic's wording
(``max_tokens: Field required``); ``dialects.py`` wraps them in Anthropic's error envelope."""

from __future__ import annotations

import os
from typing import Any

import orjson

from batchgate.sim.config import SimConfig
from batchgate.sim.envelopes import InvalidRequest
from batchgate.sim.text import (
    content_text,
    conversation_reply,
    conversation_tokens,
    estimate_tokens,
)
from batchgate.sim.tools import messages_tool_use

_ROLES = ("user", "assistant")


def message(req: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    """An Anthropic ``message`` whose text quotes the last user message, exactly as the chat
    reply to the same conversation does (``system`` counts as a leading system message).
    ``max_tokens`` (required) truncates it, giving ``stop_reason: "max_tokens"``; with
    ``tools`` and "weather" in the last user message, a ``tool_use`` block instead.
    ``stop_sequences``, ``temperature`` and the like are accepted and ignored, as on chat."""
    model = _require_model(req, config)
    limit = _max_tokens(req)
    texts, last_user = _conversation(req)
    stop_sequences = req.get("stop_sequences")
    if stop_sequences is not None and not (
        isinstance(stop_sequences, list) and all(isinstance(s, str) for s in stop_sequences)
    ):
        raise InvalidRequest("stop_sequences: Input should be a valid list of strings")
    tool_use = messages_tool_use(req, last_user)
    if tool_use is not None:
        content = [tool_use]
        # As for a chat tool call: the tokens of the JSON arguments, plus 8.
        output_tokens = estimate_tokens(orjson.dumps(tool_use["input"]).decode()) + 8
        stop_reason = "tool_use"
    else:
        text, output_tokens, cut = conversation_reply(model, texts, last_user, limit)
        content = [{"type": "text", "text": text}]
        stop_reason = "max_tokens" if cut else "end_turn"
    return {
        "id": "msg_" + os.urandom(12).hex(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": conversation_tokens(texts),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def _require_model(req: dict[str, Any], config: SimConfig) -> str:
    """The request's ``model``; 400 when missing or when ``stream`` is true (not simulated);
    404 ``not_found_error`` (Anthropic's answer to an unknown model) when it starts with the
    configured ``fail_model_prefix``."""
    model = req.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required", param="model")
    if req.get("stream") is True:
        raise InvalidRequest("stream: the simulator does not stream; omit 'stream'.")
    prefix = config.fail_model_prefix
    if prefix and model.startswith(prefix):
        raise InvalidRequest(f"model: {model} (simulated)", code="model_not_found", status=404)
    return model


def _max_tokens(req: dict[str, Any]) -> int:
    value = req.get("max_tokens")
    if value is None:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(
            "max_tokens: Input should be an integer of at least 1", param="max_tokens"
        )
    return value


def _conversation(req: dict[str, Any]) -> tuple[list[str], str]:
    """(the text of ``system`` then of each message, the last user message's text), as chat
    sees the same conversation: a user turn holding only ``tool_result`` blocks is a tool
    message there, so it adds its results' text but does not become the last user text."""
    texts: list[str] = []
    system = req.get("system")
    if system is not None:
        if not isinstance(system, str | list):
            raise InvalidRequest("system: Input should be a valid string or list of blocks")
        texts.append(content_text(system))
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required", param="messages")
    last_user = ""
    for index, item in enumerate(messages):
        if not isinstance(item, dict) or item.get("role") not in _ROLES:
            raise InvalidRequest(
                f"messages.{index}.role: Input should be 'user' or 'assistant'"
                " (a system prompt goes in the top-level 'system' parameter)",
                param="messages",
            )
        text, has_text = _content(item.get("content"), index)
        if item["role"] == "user" and has_text:
            last_user = text
        texts.append(text)
    return texts, last_user


def _content(content: Any, index: int) -> tuple[str, bool]:
    """(text, whether it has text of its own): a string, or the ``text`` blocks (and the
    content of ``tool_result`` blocks) of a block list, joined by spaces."""
    if isinstance(content, str):
        return content, True
    if not isinstance(content, list):
        raise InvalidRequest(
            f"messages.{index}.content: Input should be a valid string or list of blocks",
            param="messages",
        )
    parts: list[str] = []
    has_text = False
    for block in content:
        if not isinstance(block, dict):
            raise InvalidRequest(
                f"messages.{index}.content: each block must be an object", param="messages"
            )
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
            has_text = True
        elif kind == "tool_result":
            result = content_text(block.get("content"))
            if result:
                parts.append(result)
    return " ".join(parts), has_text
