"""An OpenAI ``/v1/chat/completions`` body as Anthropic ``/v1/messages`` params (wire spec §4.1).

Faithful or refused: a field that would change the reply and has no Anthropic slot raises
TranslationError; only the documented hints in IGNORED_CHAT_FIELDS are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from batchgate.providers.translate.common import (
    JSON,
    TranslationError,
    expect,
    image_source,
    refuse_stream,
    reject_unknown,
    tool_use_block,
)

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; used when the OpenAI body sets no output cap."""

IGNORED_CHAT_FIELDS = frozenset(
    {
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "metadata",
        "parallel_tool_calls",  # read on its own: only ``false`` means something to Anthropic
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "seed",
        "service_tier",
        "store",
        "stream_options",
        "top_logprobs",
    }
)
"""Sampling and bookkeeping hints that Anthropic's own OpenAI-compat layer drops silently."""

_TARGET = "Anthropic Messages"
_MAX_FIELDS = ("max_completion_tokens", "max_tokens")

Setting = Callable[[Any], JSON]
Part = Callable[[Mapping[str, Any], str], list[JSON]]


def chat_request_to_messages(
    body: Mapping[str, Any], *, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> JSON:
    """Anthropic Messages params for an OpenAI chat body, or TranslationError naming the field.

    System and developer messages, wherever they stand, become one ``system`` string joined with
    "\\n"; consecutive same-role turns merge; ``temperature`` above 1 is capped at 1 (what
    Anthropic's compat layer does); ``max_completion_tokens`` wins over ``max_tokens``.
    """
    reject_unknown(
        body, {"model", "messages", *_MAX_FIELDS, *_SETTINGS, *IGNORED_CHAT_FIELDS}, "", _TARGET
    )
    params: JSON = {} if "model" not in body else {"model": body["model"]}
    params["max_tokens"] = _max_tokens(body, default_max_tokens)
    system, turns = _conversation(expect(body.get("messages"), list, "messages", "a list"))
    if system:
        params["system"] = system
    params["messages"] = turns
    for field, convert in _SETTINGS.items():
        if body.get(field) is not None:
            params.update(convert(body[field]))
    if body.get("parallel_tool_calls") is False:
        _disable_parallel_tool_use(params)
    return params


def _max_tokens(body: Mapping[str, Any], default: int) -> Any:
    for field in _MAX_FIELDS:
        if body.get(field) is not None:
            return expect(body[field], int, field, "an integer")
    return default


def _disable_parallel_tool_use(params: JSON) -> None:
    choice = params.get("tool_choice", {"type": "auto"})
    if "tools" in params and choice["type"] != "none":
        params["tool_choice"] = {**choice, "disable_parallel_tool_use": True}


# --- top-level settings -----------------------------------------------------------------------


def _n(value: Any) -> JSON:
    if value != 1:
        raise TranslationError(
            f"n={value}: Anthropic returns one reply per request; set n to 1.", param="n"
        )
    return {}


def _response_format(value: Any) -> JSON:
    kind = value.get("type") if isinstance(value, Mapping) else value
    if kind != "text":
        raise TranslationError(
            f"response_format type {kind!r}: Anthropic Messages has no JSON or schema output mode; "
            'remove response_format or use {"type": "text"}.',
            param="response_format",
        )
    return {}


def _temperature(value: Any) -> JSON:
    # OpenAI takes 0 to 2, Anthropic 0 to 1: cap like Anthropic's compat layer instead of refusing.
    return {"temperature": min(expect(value, (int, float), "temperature", "a number"), 1)}


def _stop(value: Any) -> JSON:
    stops = [value] if isinstance(value, str) else expect(value, list, "stop", "a string or list")
    for i, stop in enumerate(stops):
        expect(stop, str, f"stop[{i}]", "a string")
    return {"stop_sequences": list(stops)}


def _tools(value: Any) -> JSON:
    tools = expect(value, list, "tools", "a list")
    return {"tools": [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]}


def _tool(tool: Any, where: str) -> JSON:
    expect(tool, Mapping, where, "a tool object")
    if tool.get("type") != "function":
        raise TranslationError(
            f"{where}.type={tool.get('type')!r}: only function tools have an Anthropic equivalent.",
            param=f"{where}.type",
        )
    function = expect(tool.get("function"), Mapping, f"{where}.function", "an object")
    reject_unknown(
        function, {"name", "description", "parameters", "strict"}, f"{where}.function.", _TARGET
    )
    out: JSON = {"name": expect(function.get("name"), str, f"{where}.function.name", "a string")}
    if function.get("description") is not None:
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


_NAMED_CHOICES: dict[str, JSON] = {
    "auto": {"type": "auto"},
    "none": {"type": "none"},
    "required": {"type": "any"},
}


def _tool_choice(value: Any) -> JSON:
    if isinstance(value, str) and value in _NAMED_CHOICES:
        return {"tool_choice": dict(_NAMED_CHOICES[value])}
    if isinstance(value, Mapping) and value.get("type") == "function":
        function = expect(value.get("function"), Mapping, "tool_choice.function", "an object")
        name = expect(function.get("name"), str, "tool_choice.function.name", "a string")
        return {"tool_choice": {"type": "tool", "name": name}}
    raise TranslationError(
        f"tool_choice={value!r}: Anthropic knows auto, none, required and one named function.",
        param="tool_choice",
    )


def _user(value: Any) -> JSON:
    return {"metadata": {"user_id": expect(value, str, "user", "a string")}}


def _top_p(value: Any) -> JSON:
    return {"top_p": expect(value, (int, float), "top_p", "a number")}


def _top_k(value: Any) -> JSON:
    return {"top_k": expect(value, int, "top_k", "an integer")}


_SETTINGS: dict[str, Setting] = {
    "n": _n,
    "stream": refuse_stream,
    "response_format": _response_format,
    "temperature": _temperature,
    "top_p": _top_p,
    "top_k": _top_k,  # not OpenAI's, but vLLM and others take it: carry it across
    "stop": _stop,
    "user": _user,
    "tools": _tools,
    "tool_choice": _tool_choice,
}


# --- messages ---------------------------------------------------------------------------------


def _conversation(messages: list[Any]) -> tuple[str, list[JSON]]:
    system: list[str] = []
    turns: list[JSON] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        expect(message, Mapping, where, "a message object")
        role = message.get("role")
        if role not in _ROLES:
            raise TranslationError(
                f"{where}.role={role!r}: expected system, developer, user, assistant or tool.",
                param=f"{where}.role",
            )
        convert, known = _ROLES[role]
        reject_unknown(message, known, f"{where}.", _TARGET)
        blocks = convert(message, where)
        if role in ("system", "developer"):
            system.extend(block["text"] for block in blocks)
        else:
            _append_turn(turns, "assistant" if role == "assistant" else "user", blocks)
    return "\n".join(system), [_compact(turn) for turn in turns]


def _append_turn(turns: list[JSON], role: str, blocks: list[JSON]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _compact(turn: JSON) -> JSON:
    blocks = turn["content"]
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        return {"role": turn["role"], "content": blocks[0]["text"]}
    return turn


def _text_blocks(text: str) -> list[JSON]:
    # Anthropic refuses empty text blocks; an empty string says nothing, so it is left out.
    return [{"type": "text", "text": text}] if text else []


def _content(message: Mapping[str, Any], where: str, parts: Mapping[str, Part]) -> list[JSON]:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return _text_blocks(content or "")
    expect(content, list, f"{where}.content", "a string or a list of content parts")
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = expect(part, Mapping, here, "a content part").get("type")
        if kind not in parts:
            raise TranslationError(
                f"{here}.type={kind!r}: this message can carry only {' and '.join(parts)} parts "
                "to Anthropic.",
                param=f"{here}.type",
            )
        blocks.extend(parts[kind](part, here))
    return blocks


def _text_part(part: Mapping[str, Any], where: str) -> list[JSON]:
    return _text_blocks(expect(part.get("text"), str, f"{where}.text", "a string"))


def _refusal_part(part: Mapping[str, Any], where: str) -> list[JSON]:
    # An earlier refusal is what the assistant said: history keeps it as text.
    return _text_blocks(expect(part.get("refusal"), str, f"{where}.refusal", "a string"))


def _image_part(part: Mapping[str, Any], where: str) -> list[JSON]:
    image = expect(part.get("image_url"), Mapping, f"{where}.image_url", "an object")
    # ``detail`` (low/high/auto) is a resolution hint with no Anthropic slot: dropped.
    return [{"type": "image", "source": image_source(image.get("url"), f"{where}.image_url.url")}]


_TEXT: dict[str, Part] = {"text": _text_part}
_USER: dict[str, Part] = {"text": _text_part, "image_url": _image_part}
_ASSISTANT: dict[str, Part] = {"text": _text_part, "refusal": _refusal_part}


def _system_blocks(message: Mapping[str, Any], where: str) -> list[JSON]:
    texts = [block["text"] for block in _content(message, where, _TEXT)]
    return _text_blocks("\n".join(texts))


def _user_blocks(message: Mapping[str, Any], where: str) -> list[JSON]:
    return _content(message, where, _USER)


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[JSON]:
    blocks = _content(message, where, _ASSISTANT)
    if message.get("refusal") is not None:
        blocks += _text_blocks(expect(message["refusal"], str, f"{where}.refusal", "a string"))
    calls = expect(message.get("tool_calls") or [], list, f"{where}.tool_calls", "a list")
    return blocks + [
        tool_use_block(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls)
    ]


def _tool_result(message: Mapping[str, Any], where: str) -> list[JSON]:
    content = message.get("content")
    if not isinstance(content, str) and content is not None:
        content = _content(message, where, _TEXT)
    call_id = expect(message.get("tool_call_id"), str, f"{where}.tool_call_id", "a string")
    return [{"type": "tool_result", "tool_use_id": call_id, "content": content or ""}]


_ROLES: dict[str, tuple[Part, frozenset[str]]] = {
    # ``name`` (a participant label) has no Anthropic slot; like the compat layer, it is dropped.
    "system": (_system_blocks, frozenset({"role", "content", "name"})),
    "developer": (_system_blocks, frozenset({"role", "content", "name"})),
    "user": (_user_blocks, frozenset({"role", "content", "name"})),
    "assistant": (
        _assistant_blocks,
        frozenset({"role", "content", "name", "tool_calls", "refusal"}),
    ),
    "tool": (_tool_result, frozenset({"role", "content", "tool_call_id"})),
}
