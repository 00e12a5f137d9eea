"""Properties of translation: content, roles, tool calls and token counts survive both ways."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

from anthropic.types import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from batchgate.providers.translate import (
    FINISH_REASONS,
    STOP_REASONS,
    chat_reply_to_message,
    chat_request_to_messages,
    messages_reply_to_chat,
    messages_request_to_chat,
)

PROPS = settings(max_examples=200, deadline=None, database=None)

texts = st.text(min_size=1, max_size=12)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
arguments = st.dictionaries(st.text(max_size=6), json_values, max_size=3)
separators = st.sampled_from([(",", ":"), (", ", ": ")])
content = texts | st.lists(texts.map(lambda t: {"type": "text", "text": t}), min_size=1, max_size=3)


# --- OpenAI conversations -------------------------------------------------------------------------

# A step is one or more OpenAI messages; tool calls are always answered right after.
system_step = st.builds(
    lambda role, c: [{"role": role, "content": c}],
    st.sampled_from(["system", "developer"]),
    content,
)
user_step = content.map(lambda c: [{"role": "user", "content": c}])
assistant_step = texts.map(lambda t: [{"role": "assistant", "content": t}])
calls_step = st.tuples(
    st.none() | texts,
    st.lists(st.tuples(names, arguments, separators, content), min_size=1, max_size=3),
)
steps = st.lists(
    st.one_of(system_step, user_step, assistant_step, calls_step), min_size=1, max_size=6
)


def conversation(drawn: list[Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for step in drawn:
        if isinstance(step, list):
            messages += step
            continue
        text, calls = step
        ids = [f"call_{len(messages)}_{k}" for k in range(len(calls))]
        tool_calls = [
            {
                "id": i,
                "type": "function",
                "function": {"name": n, "arguments": json.dumps(a, separators=s)},
            }
            for i, (n, a, s, _) in zip(ids, calls, strict=True)
        ]
        messages.append({"role": "assistant", "content": text, "tool_calls": tool_calls})
        messages += [
            {"role": "tool", "tool_call_id": i, "content": c}
            for i, (*_, c) in zip(ids, calls, strict=True)
        ]
    return messages


def tools_and_choice(tool_names: list[str], choice: str) -> dict[str, Any]:
    if not tool_names:
        return {}
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in tool_names
    ]
    named = {"type": "function", "function": {"name": tool_names[0]}}
    return {"tools": tools, "tool_choice": named if choice == "named" else choice}


chat_bodies = st.builds(
    lambda drawn, tools, extra: {"model": "m", "messages": conversation(drawn), **tools, **extra},
    steps,
    st.builds(
        tools_and_choice,
        st.lists(names, max_size=3, unique=True),
        st.sampled_from(["auto", "none", "required", "named"]),
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "max_tokens": st.integers(1, 10**6),
            "temperature": st.floats(0, 1),
            "top_p": st.floats(0, 1),
            "stop": st.lists(texts, min_size=1, max_size=4),
            "user": texts,
        },
    ),
)


def text_pieces(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [part["text"] for part in value]


def runs(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Per run of same-role turns (tool answers belong to the user): texts, calls, results."""
    out: list[tuple[str, list[str], list[Any], list[Any]]] = []
    for message in messages:
        role = {"tool": "user"}.get(message["role"], message["role"])
        if role in ("system", "developer"):
            continue
        if not out or out[-1][0] != role:
            out.append((role, [], [], []))
        _, said, calls, results = out[-1]
        if message["role"] == "tool":
            results.append((message["tool_call_id"], "".join(text_pieces(message["content"]))))
            continue
        said += [t for t in text_pieces(message["content"]) if t]
        for call in message.get("tool_calls") or []:
            fn = call["function"]
            calls.append((call["id"], fn["name"], json.loads(fn["arguments"] or "{}")))
    return [(role, tuple(s), tuple(map(repr, c)), tuple(r)) for role, s, c, r in out]


def system_text(messages: list[dict[str, Any]]) -> str:
    texts_ = [
        "\n".join(text_pieces(m["content"]))
        for m in messages
        if m["role"] in ("system", "developer")
    ]
    return "\n".join(t for t in texts_ if t)


@PROPS
@given(chat_bodies)
def test_chat_request_survives_the_round_trip(body: dict[str, Any]) -> None:
    params = chat_request_to_messages(body)
    roles = [turn["role"] for turn in params["messages"]]
    assert all(a != b for a, b in pairwise(roles)), "same-role turns merged"
    assert set(roles) <= {"user", "assistant"}
    back = messages_request_to_chat(params)

    assert system_text(back["messages"]) == system_text(body["messages"])
    assert all(m["role"] != "system" for m in back["messages"][1:])
    assert runs(back["messages"]) == runs(body["messages"])
    for field in ("model", "temperature", "top_p", "user", "tools", "tool_choice"):
        assert back.get(field) == body.get(field)
    assert back.get("stop") == body.get("stop")
    assert back["max_tokens"] == body.get("max_tokens", 4096)
    # What one translation produces, the other carries back unchanged.
    assert chat_request_to_messages(back) == params


# --- replies ------------------------------------------------------------------------------------

counts = st.integers(0, 10**7)
anthropic_blocks = st.lists(
    st.one_of(
        st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=12)),
        st.builds(lambda n, a: {"type": "tool_use", "name": n, "input": a}, names, arguments),
    ),
    max_size=5,
)
anthropic_usage = st.fixed_dictionaries(
    {"input_tokens": counts, "output_tokens": counts},
    optional={
        "cache_creation_input_tokens": st.none() | counts,
        "cache_read_input_tokens": st.none() | counts,
    },
)


def numbered_tool_uses(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**b, "id": f"toolu_{k}"} if b["type"] == "tool_use" else b for k, b in enumerate(blocks)
    ]


anthropic_messages = st.builds(
    lambda blocks, reason, usage, body: {
        "id": "msg_" + body,
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": numbered_tool_uses(blocks),
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": usage,
    },
    anthropic_blocks,
    st.sampled_from(sorted(FINISH_REASONS)),
    anthropic_usage,
    st.text(alphabet="ABCXYZabcxyz0123456789", min_size=1, max_size=24),
)


def joined_text(message: dict[str, Any]) -> str:
    return "".join(b["text"] for b in message["content"] if b["type"] == "text")


def tool_uses(message: dict[str, Any]) -> list[Any]:
    return [(b["id"], b["name"], b["input"]) for b in message["content"] if b["type"] == "tool_use"]


@PROPS
@given(anthropic_messages)
def test_a_message_reply_survives_the_round_trip(message: dict[str, Any]) -> None:
    completion = messages_reply_to_chat(message, created=0)
    ChatCompletion.model_validate(completion, strict=True)
    back = chat_reply_to_message(completion)
    Message.model_validate(back, strict=True)

    assert back["id"] == message["id"]
    assert joined_text(back) == joined_text(message)
    assert tool_uses(back) == tool_uses(message)
    assert back["stop_reason"] == STOP_REASONS[FINISH_REASONS[message["stop_reason"]]]
    usage, again = message["usage"], back["usage"]
    assert again["input_tokens"] == usage["input_tokens"]
    assert again["output_tokens"] == usage["output_tokens"]
    assert again["cache_read_input_tokens"] == (usage.get("cache_read_input_tokens") or 0)
    assert again["cache_creation_input_tokens"] == (usage.get("cache_creation_input_tokens") or 0)
    counted = completion["usage"]
    assert counted["prompt_tokens"] == sum(
        usage.get(k) or 0
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    assert counted["total_tokens"] == counted["prompt_tokens"] + counted["completion_tokens"]


def chat_reply(
    content: str | None, calls: list[Any], finish: str, prompt: int, cached: int, out: int
) -> Any:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{k}",
                "type": "function",
                "function": {"name": n, "arguments": json.dumps(a, separators=s)},
            }
            for k, (n, a, s) in enumerate(calls)
        ]
    usage: dict[str, Any] = {"prompt_tokens": prompt + cached, "completion_tokens": out}
    usage["total_tokens"] = prompt + cached + out
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


chat_replies = st.builds(
    chat_reply,
    st.none() | st.text(max_size=12),
    st.lists(st.tuples(names, arguments, separators), max_size=3),
    st.sampled_from(sorted(STOP_REASONS)),
    counts,
    counts,
    counts,
)


@PROPS
@given(chat_replies)
def test_a_chat_reply_survives_the_round_trip(completion: dict[str, Any]) -> None:
    message = chat_reply_to_message(completion)
    Message.model_validate(message, strict=True)
    back = messages_reply_to_chat(message, created=completion["created"])
    ChatCompletion.model_validate(back, strict=True)

    before, after = completion["choices"][0], back["choices"][0]
    assert back["id"] == completion["id"]
    assert (after["message"]["content"] or "") == (before["message"]["content"] or "")
    calls = [before["message"].get("tool_calls") or [], after["message"].get("tool_calls") or []]
    parsed = [
        [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in cs]
        for cs in calls
    ]
    assert parsed[0] == parsed[1]
    assert after["finish_reason"] == FINISH_REASONS[STOP_REASONS[before["finish_reason"]]]
    for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert back["usage"][field] == completion["usage"][field]
    cached = (completion["usage"].get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    assert back["usage"]["prompt_tokens_details"]["cached_tokens"] == cached
    assert message["usage"]["output_tokens"] == completion["usage"]["completion_tokens"]
