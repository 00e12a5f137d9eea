"""Shared pieces of Chat Completions ⇄ Messages translation: the error, checks, ids, images."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from batchgate.errors import InvalidRequest

JSON = dict[str, Any]


class TranslationError(InvalidRequest):
    """A request or reply that the other dialect cannot carry without changing its meaning.

    ``param`` names the field (``messages[2].tool_calls[0].function.arguments``); the message
    starts with it, says why, and says what to change. The engine turns it into an error line.
    """

    code = "untranslatable"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message, param=param, code="untranslatable")


def reject_unknown(obj: Mapping[str, Any], known: Collection[str], where: str, target: str) -> None:
    """Refuse fields outside ``known``; a field set to null counts as absent."""
    extra = sorted(k for k, v in obj.items() if k not in known and v is not None)
    if not extra:
        return
    names = [f"{where}{k}" for k in extra]
    pronoun = "it" if len(names) == 1 else "them"
    raise TranslationError(
        f"{', '.join(names)}: no {target} equivalent; remove {pronoun} to use this upstream.",
        param=names[0],
    )


def expect(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise TranslationError(f"{param}: expected {what}.", param=param)
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_arguments(arguments: Any, param: str) -> JSON:
    """OpenAI ``function.arguments`` (a JSON string) as the object Anthropic wants as ``input``.

    An empty string means "no arguments" ({}), as several OpenAI-compatible servers send it.
    """
    if arguments is None or arguments == "":
        return {}
    try:
        value = json.loads(expect(arguments, str, param, "a JSON string"))
    except json.JSONDecodeError as exc:
        raise TranslationError(
            f"{param}: not valid JSON ({exc.msg}); Anthropic tool_use input must be a JSON object.",
            param=param,
        ) from None
    if not isinstance(value, dict):
        raise TranslationError(
            f"{param}: JSON {type(value).__name__}, not an object; Anthropic tool_use input "
            "must be a JSON object.",
            param=param,
        )
    return value


def tool_use_block(call: Any, where: str) -> JSON:
    """An OpenAI ``tool_calls`` item as an Anthropic ``tool_use`` block (same id)."""
    expect(call, Mapping, where, "a tool call object")
    if call.get("type", "function") != "function":
        raise TranslationError(
            f"{where}.type={call.get('type')!r}: only function tool calls have an Anthropic "
            "equivalent.",
            param=f"{where}.type",
        )
    function = expect(call.get("function"), Mapping, f"{where}.function", "an object")
    return {
        "type": "tool_use",
        "id": expect(call.get("id"), str, f"{where}.id", "a string"),
        "name": expect(function.get("name"), str, f"{where}.function.name", "a string"),
        "input": parse_arguments(function.get("arguments"), f"{where}.function.arguments"),
    }


def function_tool_call(block: Mapping[str, Any], where: str) -> JSON:
    """An Anthropic ``tool_use`` block as an OpenAI ``tool_calls`` item (same id)."""
    arguments = expect(block.get("input", {}), Mapping, f"{where}.input", "an object")
    return {
        "id": expect(block.get("id"), str, f"{where}.id", "a string"),
        "type": "function",
        "function": {
            "name": expect(block.get("name"), str, f"{where}.name", "a string"),
            "arguments": compact_json(arguments),
        },
    }


# Ids keep the upstream's body and swap the dialect prefix, so a reply can be traced both ways.
CHAT_ID_PREFIX = "chatcmpl-"
MESSAGE_ID_PREFIX = "msg_"


def chat_id(message_id: str) -> str:
    return CHAT_ID_PREFIX + message_id.removeprefix(MESSAGE_ID_PREFIX)


def message_id(completion_id: str) -> str:
    return MESSAGE_ID_PREFIX + completion_id.removeprefix(CHAT_ID_PREFIX)


_DATA_URL = re.compile(r"data:(?P<media>[^;,]+);base64,(?P<data>.*)", re.DOTALL)


def image_source(url: Any, param: str) -> JSON:
    """An OpenAI ``image_url.url`` as an Anthropic image ``source``."""
    expect(url, str, param, "an image URL string")
    found = _DATA_URL.fullmatch(url)
    if found:
        return {"type": "base64", "media_type": found["media"], "data": found["data"]}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise TranslationError(
        f"{param}: only base64 data URLs (data:<media type>;base64,…) and http(s) URLs "
        "have an Anthropic image source.",
        param=param,
    )


def image_url(source: Any, param: str) -> str:
    """An Anthropic image ``source`` as an OpenAI ``image_url.url``."""
    expect(source, Mapping, param, "an image source object")
    kind = source.get("type")
    if kind == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if kind == "url":
        return str(expect(source.get("url"), str, f"{param}.url", "a URL string"))
    raise TranslationError(
        f"{param}.type={kind!r}: only base64 and url image sources have an OpenAI image_url.",
        param=f"{param}.type",
    )


def refuse_stream(value: Any) -> JSON:
    """``stream`` in either dialect: false is fine, anything else cannot run in a batch."""
    if value is not False:
        raise TranslationError(
            "stream=true: a batch request gets one whole reply; remove stream.", param="stream"
        )
    return {}
