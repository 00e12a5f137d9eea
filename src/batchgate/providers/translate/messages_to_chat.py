"""Anthropic ``/v1/messages`` params as an OpenAI ``/v1/chat/completions`` body (wire spec §4.1).

Faithful or refused: a field that would change the reply and has no OpenAI slot (extended
thinking, server tools, containers, MCP servers…) raises TranslationError; only the hints in
IGNORED_MESSAGES_FIELDS are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from batchgate.providers.translate.common import (
    JSON,
    TranslationError,
    expect,
    function_tool_call,
    image_url,
    refuse_stream,
    reject_unknown,
)

IGNORED_MESSAGES_FIELDS = frozenset({"cache_control", "service_tier"})
"""Prompt-caching and capacity hints: they change cost or routing, never the reply."""

_TARGET = "OpenAI chat"
_CUSTOM_TOOL_TYPES = (None, "custom")

Setting = Callable[[Any], JSON]
Block = Callable[[Mapping[str, Any], str], JSON]


def messages_request_to_chat(params: Mapping[str, Any]) -> JSON:
    """An OpenAI chat body for Anthropic Messages params, or TranslationError naming the field.

    ``system`` (a string or text blocks) becomes one leading system message; each user turn's
    ``tool_result`` blocks become ``tool`` messages placed before the rest of that turn.
    ``max_tokens`` is sent as ``max_tokens``, the name every OpenAI-compatible server knows, and
    ``top_k`` is carried as the extra field vLLM and its kin accept.
    """
    reject_unknown(
        params, {"model", "system", "messages", *_SETTINGS, *IGNORED_MESSAGES_FIELDS}, "", _TARGET
    )
    body: JSON = {} if "model" not in params else {"model": params["model"]}
    body["messages"] = _system(params.get("system")) + _conversation(
        expect(params.get("messages"), list, "messages", "a list")
    )
    for field, convert in _SETTINGS.items():
        if params.get(field) is not None:
            body.update(convert(params[field]))
    return body


# --- top-level settings -----------------------------------------------------------------------


def _thinking(value: Any) -> JSON:
    kind = value.get("type") if isinstance(value, Mapping) else value
    if kind != "disabled":
        raise TranslationError(
            f"thinking type {kind!r}: extended thinking has no OpenAI chat equivalent; "
            'remove thinking or set {"type": "disabled"}.',
            param="thinking",
        )
    return {}


def _metadata(value: Any) -> JSON:
    user_id = expect(value, Mapping, "metadata", "an object").get("user_id")
    return {} if user_id is None else {"user": expect(user_id, str, "metadata.user_id", "a string")}


def _stop_sequences(value: Any) -> JSON:
    stops = expect(value, list, "stop_sequences", "a list")
    for i, stop in enumerate(stops):
        expect(stop, str, f"stop_sequences[{i}]", "a string")
    return {"stop": list(stops)}


def _tools(value: Any) -> JSON:
    tools = expect(value, list, "tools", "a list")
    return {"tools": [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]}


def _tool(tool: Any, where: str) -> JSON:
    expect(tool, Mapping, where, "a tool object")
    if tool.get("type") not in _CUSTOM_TOOL_TYPES:
        raise TranslationError(
            f"{where}.type={tool.get('type')!r}: Anthropic server tools have no OpenAI chat "
            "equivalent; only custom tools (name, description, input_schema) translate.",
            param=f"{where}.type",
        )
    # ``strict`` and ``cache_control`` are dropped: hints, the same both ways.
    known = {"type", "name", "description", "input_schema", "cache_control", "strict"}
    reject_unknown(tool, known, f"{where}.", _TARGET)
    function: JSON = {"name": expect(tool.get("name"), str, f"{where}.name", "a string")}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    function["parameters"] = expect(
        tool.get("input_schema"), Mapping, f"{where}.input_schema", "a JSON Schema object"
    )
    return {"type": "function", "function": function}


_NAMED_CHOICES = {"auto": "auto", "none": "none", "any": "required"}


def _tool_choice(value: Any) -> JSON:
    kind = expect(value, Mapping, "tool_choice", "an object").get("type")
    if kind in _NAMED_CHOICES:
        body: JSON = {"tool_choice": _NAMED_CHOICES[kind]}
    elif kind == "tool":
        name = expect(value.get("name"), str, "tool_choice.name", "a string")
        body = {"tool_choice": {"type": "function", "function": {"name": name}}}
    else:
        raise TranslationError(
            f"tool_choice.type={kind!r}: OpenAI knows auto, none, any (required) and tool.",
            param="tool_choice.type",
        )
    if value.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False
    return body


def _copy(field: str, kind: type | tuple[type, ...], what: str) -> Setting:
    return lambda value: {field: expect(value, kind, field, what)}


_SETTINGS: dict[str, Setting] = {
    "stream": refuse_stream,
    "thinking": _thinking,
    "max_tokens": _copy("max_tokens", int, "an integer"),
    "temperature": _copy("temperature", (int, float), "a number"),
    "top_p": _copy("top_p", (int, float), "a number"),
    "top_k": _copy("top_k", int, "an integer"),
    "stop_sequences": _stop_sequences,
    "metadata": _metadata,
    "tools": _tools,
    "tool_choice": _tool_choice,
}


# --- messages ---------------------------------------------------------------------------------


def _system(system: Any) -> list[JSON]:
    text = _joined_text(system, "system")
    return [{"role": "system", "content": text}] if text else []


def _joined_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    blocks = expect(content, list, where, "a string or a list of text blocks")
    return "\n".join(_text(block, f"{where}[{i}]")["text"] for i, block in enumerate(blocks))


def _conversation(messages: list[Any]) -> list[JSON]:
    out: list[JSON] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        expect(message, Mapping, where, "a message object")
        role = message.get("role")
        if role not in _ROLES:
            raise TranslationError(
                f"{where}.role={role!r}: expected user, assistant or system.",
                param=f"{where}.role",
            )
        reject_unknown(message, {"role", "content"}, f"{where}.", _TARGET)
        out.extend(_ROLES[role](message.get("content"), where))
    return out


def _blocks(content: Any, where: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(type, path, block) for each block of a list content."""
    blocks = expect(content, list, f"{where}.content", "a string or a list of blocks")
    found = []
    for j, block in enumerate(blocks):
        here = f"{where}.content[{j}]"
        found.append((expect(block, Mapping, here, "a block").get("type"), here, block))
    return found


def _unsupported(kind: Any, where: str, allowed: str) -> TranslationError:
    return TranslationError(
        f"{where}.type={kind!r}: no OpenAI chat equivalent here; only {allowed} blocks translate.",
        param=f"{where}.type",
    )


def _user_turn(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[JSON] = []
    parts: list[JSON] = []
    for kind, here, block in _blocks(content, where):
        if kind == "tool_result":
            tools.append(_tool_message(block, here))
        elif kind in _USER_PARTS:
            parts.append(_USER_PARTS[kind](block, here))
        else:
            raise _unsupported(kind, here, "text, image and tool_result")
    # OpenAI wants tool answers right after the assistant's calls: they lead the turn.
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_turn(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    parts: list[JSON] = []
    calls: list[JSON] = []
    for kind, here, block in _blocks(content, where):
        if kind == "text":
            parts.append(_text(block, here))
        elif kind == "tool_use":
            calls.append(function_tool_call(block, here))
        elif kind not in _DROPPED_BLOCKS:
            raise _unsupported(kind, here, "text, tool_use and thinking")
    message: JSON = {"role": "assistant", "content": parts or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _system_turn(content: Any, where: str) -> list[JSON]:
    # Newer Anthropic SDKs allow system items inside ``messages``; OpenAI keeps them in place.
    return [{"role": "system", "content": _joined_text(content, f"{where}.content")}]


# Earlier reasoning has no OpenAI slot; Anthropic itself drops it from older turns.
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def _text(block: Mapping[str, Any], where: str) -> JSON:
    if block.get("type") != "text":
        raise _unsupported(block.get("type"), where, "text")
    return {"type": "text", "text": expect(block.get("text"), str, f"{where}.text", "a string")}


def _image(block: Mapping[str, Any], where: str) -> JSON:
    return {
        "type": "image_url",
        "image_url": {"url": image_url(block.get("source"), f"{where}.source")},
    }


_USER_PARTS: dict[str, Block] = {"text": _text, "image": _image}


def _tool_message(block: Mapping[str, Any], where: str) -> JSON:
    # ``is_error`` has no OpenAI slot: the content, which says what went wrong, is kept.
    content = block.get("content")
    if content is not None and not isinstance(content, str):
        content = [_text(b, here) for _kind, here, b in _blocks(content, where)]
    tool_use_id = expect(block.get("tool_use_id"), str, f"{where}.tool_use_id", "a string")
    return {"role": "tool", "tool_call_id": tool_use_id, "content": content or ""}


_ROLES: dict[str, Callable[[Any, str], list[JSON]]] = {
    "user": _user_turn,
    "assistant": _assistant_turn,
    "system": _system_turn,
}
