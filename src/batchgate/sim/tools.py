"""Simulated tool use: when a request offers tools and its last user message mentions the
weather, the reply calls the first tool with sample arguments filled in from its JSON schema.
Chat completions get a ``tool_calls`` entry, Anthropic messages a ``tool_use`` block."""

from __future__ import annotations

import os
from typing import Any

import orjson

_SAMPLES: dict[str, Any] = {
    "string": "Paris",
    "number": 21.5,
    "integer": 1,
    "boolean": True,
    "array": [],
    "object": {},
}


def sample_input(schema: Any) -> dict[str, Any]:
    """Each property of a JSON-schema ``object`` filled with a sample value of its type
    (``enum`` properties take their first value)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    arguments: dict[str, Any] = {}
    if isinstance(properties, dict):
        for name, prop in properties.items():
            prop = prop if isinstance(prop, dict) else {}
            enum = prop.get("enum")
            if isinstance(enum, list) and enum:
                arguments[name] = enum[0]
            else:
                arguments[name] = _SAMPLES.get(str(prop.get("type")))
    return arguments


def sample_arguments(schema: Any) -> str:
    """``sample_input`` as a JSON string (how chat tool calls carry their arguments)."""
    return orjson.dumps(sample_input(schema)).decode()


def wants_weather(last_user: str) -> bool:
    """Whether the last user message asks for a (simulated) tool call."""
    return "weather" in last_user.lower()


def chat_tool_call(req: dict[str, Any], last_user: str) -> dict[str, Any] | None:
    """A chat ``tool_calls`` entry calling the first function tool when the request offers
    tools (and does not say ``tool_choice: "none"``) and ``wants_weather``; else None."""
    tools = req.get("tools")
    if not isinstance(tools, list) or req.get("tool_choice") == "none":
        return None
    if not wants_weather(last_user):
        return None
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return {
                "id": "call_" + os.urandom(12).hex(),
                "type": "function",
                "function": {
                    "name": function["name"],
                    "arguments": sample_arguments(function.get("parameters")),
                },
            }
    return None


def messages_tool_use(req: dict[str, Any], last_user: str) -> dict[str, Any] | None:
    """An Anthropic ``tool_use`` block calling the first client tool (one with a ``name`` and
    no ``type`` other than ``custom``; server tools are skipped) when the request offers
    tools (and its ``tool_choice`` is not ``{"type": "none"}``) and ``wants_weather``."""
    tools = req.get("tools")
    choice = req.get("tool_choice")
    if not isinstance(tools, list) or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    if not wants_weather(last_user):
        return None
    for tool in tools:
        if (
            isinstance(tool, dict)
            and isinstance(tool.get("name"), str)
            and tool.get("type") in (None, "custom")
        ):
            return {
                "type": "tool_use",
                "id": "toolu_" + os.urandom(12).hex(),
                "name": tool["name"],
                "input": sample_input(tool.get("input_schema")),
            }
    return None
