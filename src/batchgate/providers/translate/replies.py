"""Replies both ways: an Anthropic Message ⇄ an OpenAI ``chat.completion`` (wire spec §4.2).

Text, tool calls (same ids), stop reasons and token counts survive the trip; ids keep their body
and swap the prefix (``msg_01`` ⇄ ``chatcmpl-01``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from batchgate.providers.translate.common import (
    JSON,
    TranslationError,
    chat_id,
    expect,
    function_tool_call,
    message_id,
    tool_use_block,
)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic ``stop_reason`` → OpenAI ``finish_reason``; anything else (or none) → ``stop``."""

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI ``finish_reason`` → Anthropic ``stop_reason``; anything else → null."""

# Reasoning has no slot in an OpenAI chat message: dropped from the reply.
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def messages_reply_to_chat(message: Mapping[str, Any], *, created: int | None = None) -> JSON:
    """An OpenAI ``chat.completion`` for an Anthropic Message.

    Text blocks join into ``message.content`` (null when there is no text but tool calls);
    ``tool_use`` blocks become ``tool_calls`` with compact JSON arguments; ``created`` defaults to
    now. A block with no OpenAI slot (a server-tool result) raises TranslationError.
    """
    texts, calls = _split_content(expect(message.get("content"), list, "content", "a list"))
    text = "".join(texts)
    reply: JSON = {"role": "assistant", "content": text if text or not calls else None}
    reply["refusal"] = None
    if calls:
        reply["tool_calls"] = calls
    choice = {
        "index": 0,
        "message": reply,
        "logprobs": None,
        "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop"),
    }
    return {
        "id": chat_id(expect(message.get("id"), str, "id", "a string")),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": message.get("model"),
        "choices": [choice],
        "usage": chat_usage(message.get("usage") or {}),
        "system_fingerprint": None,
    }


def _split_content(blocks: list[Any]) -> tuple[list[str], list[JSON]]:
    texts: list[str] = []
    calls: list[JSON] = []
    for i, block in enumerate(blocks):
        kind = expect(block, Mapping, f"content[{i}]", "a block").get("type")
        if kind == "text":
            texts.append(expect(block.get("text"), str, f"content[{i}].text", "a string"))
        elif kind == "tool_use":
            calls.append(function_tool_call(block, f"content[{i}]"))
        elif kind not in _DROPPED_BLOCKS:
            raise TranslationError(
                f"content[{i}].type={kind!r}: this block has no OpenAI chat equivalent.",
                param=f"content[{i}].type",
            )
    return texts, calls


def chat_usage(usage: Mapping[str, Any]) -> JSON:
    """OpenAI usage for Anthropic usage: every input token, cached or not, is a prompt token."""
    written = usage.get("cache_creation_input_tokens") or 0
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + written + cached
    completion = usage.get("output_tokens") or 0
    details: JSON = {"cached_tokens": cached}
    if written:
        details["cache_write_tokens"] = written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
    }


def chat_reply_to_message(
    completion: Mapping[str, Any], *, stop_sequences: Sequence[str] = ()
) -> JSON:
    """An Anthropic Message for an OpenAI ``chat.completion`` with exactly one choice.

    ``finish_reason`` "stop" becomes ``end_turn``, or ``stop_sequence`` when the upstream names
    the stop string that fired (vLLM's ``choices[0].stop_reason``) and it is one of
    ``stop_sequences`` (any string, when none are given). Tool-call arguments that are not a
    JSON object raise TranslationError: Anthropic's ``input`` must be one.
    """
    choices = expect(completion.get("choices"), list, "choices", "a list")
    if len(choices) != 1:
        raise TranslationError(
            f"choices: {len(choices)} choices; an Anthropic Message holds exactly one reply.",
            param="choices",
        )
    choice = expect(choices[0], Mapping, "choices[0]", "an object")
    message = expect(choice.get("message"), Mapping, "choices[0].message", "an object")
    stop_reason, stop_sequence = _stop_reason(choice, stop_sequences)
    return {
        "id": message_id(expect(completion.get("id"), str, "id", "a string")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model"),
        "content": _blocks(message),
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": message_usage(completion.get("usage") or {}),
    }


def _stop_reason(choice: Mapping[str, Any], stop_sequences: Sequence[str]) -> tuple[Any, Any]:
    finish = choice.get("finish_reason")
    matched = choice.get("stop_reason")
    fired = isinstance(matched, str) and (not stop_sequences or matched in stop_sequences)
    if finish == "stop" and fired:
        return "stop_sequence", matched
    return STOP_REASONS.get(finish or ""), None


def _blocks(message: Mapping[str, Any]) -> list[JSON]:
    where = "choices[0].message"
    blocks: list[JSON] = []
    for field in ("content", "refusal"):  # a refusal is what the model said: kept as text
        text = expect(message.get(field) or "", str, f"{where}.{field}", "a string")
        if text:
            blocks.append({"type": "text", "text": text})
    calls = expect(message.get("tool_calls") or [], list, f"{where}.tool_calls", "a list")
    return blocks + [
        tool_use_block(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls)
    ]


def message_usage(usage: Mapping[str, Any]) -> JSON:
    """Anthropic usage for OpenAI usage: cached (and cache-written) prompt tokens split out."""
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    return {
        "input_tokens": max((usage.get("prompt_tokens") or 0) - cached - written, 0),
        "output_tokens": usage.get("completion_tokens") or 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }
