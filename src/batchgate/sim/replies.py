"""Deterministic reply builders for ``/v1/chat/completions``, ``/v1/completions`` and
``/v1/responses``: each takes the parsed request and returns the OpenAI-shaped reply dict."""

from __future__ import annotations

import os
import time
from typing import Any

from batchgate.sim.config import SimConfig
from batchgate.sim.envelopes import InvalidRequest
from batchgate.sim.text import (
    content_text,
    conversation_reply,
    conversation_tokens,
    estimate_tokens,
    reply_text,
    truncate,
)
from batchgate.sim.tools import chat_tool_call

MAX_CHOICES = 128


def _hex(nbytes: int) -> str:
    return os.urandom(nbytes).hex()


def require_model(req: dict[str, Any], config: SimConfig) -> str:
    """The request's ``model``; 400 when missing or when ``stream`` is true (not simulated),
    or ``model_not_found`` when the model starts with the configured ``fail_model_prefix``
    (the deterministic per-line failure for tests)."""
    model = req.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("You must provide a model parameter.", param="model")
    if req.get("stream") is True:  # explicit, rather than a JSON body the client can't read
        raise InvalidRequest("The simulator does not stream; omit 'stream'.", param="stream")
    prefix = config.fail_model_prefix
    if prefix and model.startswith(prefix):
        raise InvalidRequest(
            f"The model `{model}` does not exist or you do not have access to it (simulated).",
            param="model",
            code="model_not_found",
        )
    return model


def positive_int(req: dict[str, Any], *names: str, default: int | None = None) -> int | None:
    """The first of ``names`` present (not null) in ``req``, which must be an int >= 1."""
    for name in names:
        value = req.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be an integer of at least 1.", param=name)
        return value
    return default


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(req: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    """A ``chat.completion`` whose text quotes the last user message; ``max_completion_tokens``
    / ``max_tokens`` truncate it (finish_reason ``length``); ``n`` repeats the choice; with
    ``tools`` and "weather" in the last user message, a ``tool_calls`` reply instead."""
    model = require_model(req, config)
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    texts: list[str] = []
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            raise InvalidRequest("Each message must be an object.", param="messages")
        text = content_text(message.get("content"))
        if message.get("role") == "user":
            last_user = text
        texts.append(text)
    limit = positive_int(req, "max_completion_tokens", "max_tokens")
    count = positive_int(req, "n", default=1) or 1
    if count > MAX_CHOICES:
        raise InvalidRequest(f"'n' must be at most {MAX_CHOICES}.", param="n")
    tool_call = chat_tool_call(req, last_user)
    if tool_call is not None:
        message_out: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [tool_call],
        }
        completion_tokens = estimate_tokens(tool_call["function"]["arguments"]) + 8
        finish = "tool_calls"
    else:
        content, completion_tokens, cut = conversation_reply(model, texts, last_user, limit)
        message_out = {"role": "assistant", "content": content, "refusal": None}
        finish = "length" if cut else "stop"
    choices = [
        {"index": i, "message": message_out, "logprobs": None, "finish_reason": finish}
        for i in range(count)
    ]
    return {
        "id": "chatcmpl-" + _hex(8),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(conversation_tokens(texts), completion_tokens * count),
        "system_fingerprint": None,
    }


def prompt_inputs(value: Any, param: str) -> list[tuple[str, int]]:
    """(text, token count) per input of a ``prompt`` / ``input`` field: a string, a list of
    strings, a list of token ids (one input) or a list of token-id lists. Token ids are
    rendered as space-separated numbers for hashing."""
    if isinstance(value, str):
        return [(value, max(1, estimate_tokens(value)))]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return [(v, max(1, estimate_tokens(v))) for v in value]
        if all(_is_token_list(v) for v in value):
            return [(" ".join(map(str, v)), len(v)) for v in value]
        if _is_token_list(value):
            return [(" ".join(map(str, value)), len(value))]
    raise InvalidRequest(
        f"'{param}' must be a string, an array of strings or an array of token arrays.",
        param=param,
    )


def _is_token_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def completion(req: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    """A legacy ``text_completion`` with one choice per prompt."""
    model = require_model(req, config)
    prompts = prompt_inputs(req.get("prompt"), "prompt")
    limit = positive_int(req, "max_tokens")
    choices = []
    prompt_tokens = completion_tokens = 0
    for index, (prompt, tokens) in enumerate(prompts):
        text, used, cut = truncate(
            reply_text(" Simulated completion of: ", prompt, model + "\x00" + prompt), limit
        )
        prompt_tokens += tokens
        completion_tokens += used
        choices.append(
            {
                "text": text,
                "index": index,
                "logprobs": None,
                "finish_reason": "length" if cut else "stop",
            }
        )
    return {
        "id": "cmpl-" + _hex(12),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(prompt_tokens, completion_tokens),
    }


def _response_inputs(req: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) for ``instructions`` and each ``input`` item of a Responses request."""
    items: list[tuple[str, str]] = []
    instructions = req.get("instructions")
    if isinstance(instructions, str):
        items.append(("system", instructions))
    value = req.get("input")
    if isinstance(value, str):
        items.append(("user", value))
        return items
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'input' must be a string or a non-empty array.", param="input")
    for item in value:
        if not isinstance(item, dict):
            raise InvalidRequest("Each input item must be an object.", param="input")
        output = item.get("output")  # a function_call_output item
        text = output if isinstance(output, str) else content_text(item.get("content"))
        items.append((str(item.get("role", "user")), text))
    return items


def response(req: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    """A Responses API ``response`` holding one assistant ``message``; ``max_output_tokens``
    truncates it and makes the status ``incomplete``."""
    model = require_model(req, config)
    items = _response_inputs(req)
    prompt_tokens = max(1, sum(estimate_tokens(text) + 4 for _, text in items))
    user_texts = [text for role, text in items if role == "user"]
    seed_text = model + "\x00" + "\x00".join(text for _, text in items)
    limit = positive_int(req, "max_output_tokens")
    text, output_tokens, cut = truncate(
        reply_text(
            "Simulated reply to: ", user_texts[-1] if user_texts else items[-1][1], seed_text
        ),
        limit,
    )
    status = "incomplete" if cut else "completed"
    return {
        "id": "resp_" + _hex(16),
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "instructions": req.get("instructions"),
        "max_output_tokens": limit,
        "metadata": req.get("metadata") or {},
        "output": [
            {
                "type": "message",
                "id": "msg_" + _hex(16),
                "status": status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "temperature": req.get("temperature"),
        "tool_choice": "auto",
        "tools": [],
        "top_p": req.get("top_p"),
        "usage": {
            "input_tokens": prompt_tokens,
            "output_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def models_list(config: SimConfig) -> dict[str, Any]:
    """The ``/v1/models`` list of the configured model names."""
    return {"object": "list", "data": [model_object(name) for name in config.models]}


def model_object(name: str) -> dict[str, Any]:
    """One ``model`` object."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "batchgate-sim"}
