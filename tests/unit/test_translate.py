"""Request translation both ways, row by row of wire spec §4.1 (batchgate.providers.translate)."""

from __future__ import annotations

from typing import Any

import pytest

from batchgate.errors import InvalidRequest
from batchgate.providers.translate import (
    DEFAULT_MAX_TOKENS,
    IGNORED_CHAT_FIELDS,
    IGNORED_MESSAGES_FIELDS,
    TranslationError,
    chat_request_to_messages,
    messages_request_to_chat,
)

HI = [{"role": "user", "content": "Hi"}]
PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
OPENAI_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather.", "parameters": WEATHER_SCHEMA},
}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Weather.", "input_schema": WEATHER_SCHEMA}


def to_anthropic(**fields: Any) -> dict[str, Any]:
    return chat_request_to_messages({"model": "m", "messages": HI, **fields})


def to_openai(**fields: Any) -> dict[str, Any]:
    return messages_request_to_chat({"model": "m", "max_tokens": 64, "messages": HI, **fields})


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_use(call_id: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": data}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


# --- OpenAI body → Anthropic params: top-level settings -----------------------------------------

# (id, OpenAI fields, Anthropic fields expected; None = key absent)
CHAT_SETTINGS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("model copied", {}, {"model": "m"}),
    ("max_tokens default", {}, {"max_tokens": DEFAULT_MAX_TOKENS}),
    ("max_tokens", {"max_tokens": 20}, {"max_tokens": 20}),
    ("max_completion_tokens", {"max_completion_tokens": 10}, {"max_tokens": 10}),
    (
        "max_completion_tokens preferred",
        {"max_completion_tokens": 10, "max_tokens": 20},
        {"max_tokens": 10},
    ),
    (
        "null max_completion_tokens falls back",
        {"max_completion_tokens": None, "max_tokens": 20},
        {"max_tokens": 20},
    ),
    ("temperature kept", {"temperature": 0.3}, {"temperature": 0.3}),
    ("temperature 0", {"temperature": 0}, {"temperature": 0}),
    ("temperature 1", {"temperature": 1}, {"temperature": 1}),
    ("temperature 1.7 capped", {"temperature": 1.7}, {"temperature": 1}),
    ("temperature 2 capped", {"temperature": 2}, {"temperature": 1}),
    ("temperature null", {"temperature": None}, {"temperature": None}),
    ("top_p", {"top_p": 0.9}, {"top_p": 0.9}),
    ("top_k", {"top_k": 40}, {"top_k": 40}),
    ("stop string", {"stop": "END"}, {"stop_sequences": ["END"]}),
    ("stop list", {"stop": ["a", "b", "c", "d"]}, {"stop_sequences": ["a", "b", "c", "d"]}),
    ("stop null", {"stop": None}, {"stop_sequences": None}),
    ("n 1", {"n": 1}, {"n": None}),
    ("stream false", {"stream": False}, {"stream": None}),
    ("response_format text", {"response_format": {"type": "text"}}, {"response_format": None}),
    ("user", {"user": "u-1"}, {"metadata": {"user_id": "u-1"}}),
    ("tools", {"tools": [OPENAI_TOOL]}, {"tools": [ANTHROPIC_TOOL]}),
    (
        "tool strict dropped",
        {"tools": [{"type": "function", "function": {"name": "f", "strict": True}}]},
        {"tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]},
    ),
    ("tool_choice auto", {"tool_choice": "auto"}, {"tool_choice": {"type": "auto"}}),
    ("tool_choice none", {"tool_choice": "none"}, {"tool_choice": {"type": "none"}}),
    ("tool_choice required", {"tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
    (
        "tool_choice named",
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"tool_choice": {"type": "tool", "name": "get_weather"}},
    ),
    (
        "parallel_tool_calls false alone",
        {"tools": [OPENAI_TOOL], "parallel_tool_calls": False},
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
    ),
    (
        "parallel_tool_calls false with required",
        {"tools": [OPENAI_TOOL], "tool_choice": "required", "parallel_tool_calls": False},
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
    ),
    (
        "parallel_tool_calls false with none",
        {"tools": [OPENAI_TOOL], "tool_choice": "none", "parallel_tool_calls": False},
        {"tool_choice": {"type": "none"}},
    ),
    (
        "parallel_tool_calls false without tools",
        {"parallel_tool_calls": False},
        {"tool_choice": None},
    ),
    (
        "parallel_tool_calls true",
        {"tools": [OPENAI_TOOL], "parallel_tool_calls": True},
        {"tool_choice": None},
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [c[1:] for c in CHAT_SETTINGS], ids=[c[0] for c in CHAT_SETTINGS]
)
def test_chat_settings_to_messages(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    params = to_anthropic(**fields)
    assert {key: params.get(key) for key in expected} == expected


def test_default_max_tokens_is_a_parameter() -> None:
    body = {"model": "m", "messages": HI}
    assert chat_request_to_messages(body, default_max_tokens=7)["max_tokens"] == 7


SAMPLE_IGNORED: dict[str, Any] = {
    "frequency_penalty": 0.5,
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "metadata": {"k": "v"},
    "parallel_tool_calls": True,
    "presence_penalty": 0.2,
    "prompt_cache_key": "k",
    "prompt_cache_retention": "24h",
    "safety_identifier": "s",
    "seed": 7,
    "service_tier": "flex",
    "store": True,
    "stream_options": {"include_usage": True},
    "top_logprobs": 3,
}


def test_every_ignored_chat_field_has_a_sample() -> None:
    assert set(SAMPLE_IGNORED) == IGNORED_CHAT_FIELDS


@pytest.mark.parametrize(("field", "value"), sorted(SAMPLE_IGNORED.items()))
def test_ignorable_chat_fields_are_dropped(field: str, value: Any) -> None:
    assert to_anthropic(**{field: value}) == to_anthropic()


# --- OpenAI messages → Anthropic system + turns ----------------------------------------------

# (id, OpenAI messages, Anthropic system expected (None = absent), Anthropic messages expected)
CHAT_MESSAGES: list[tuple[str, list[Any], str | None, list[Any]]] = [
    ("plain user", HI, None, HI),
    (
        "system leading",
        [{"role": "system", "content": "Be brief."}, *HI],
        "Be brief.",
        HI,
    ),
    (
        "system and developer anywhere, joined",
        [
            {"role": "system", "content": "A"},
            *HI,
            {"role": "developer", "content": "B"},
            {"role": "assistant", "content": "Hello"},
            {"role": "system", "content": [text("C"), text("D")]},
        ],
        "A\nB\nC\nD",
        [*HI, {"role": "assistant", "content": "Hello"}],
    ),
    ("empty system dropped", [{"role": "system", "content": ""}, *HI], None, HI),
    (
        "multi-turn",
        [*HI, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}],
        None,
        [*HI, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}],
    ),
    (
        "consecutive users merged",
        [*HI, {"role": "user", "content": "again"}],
        None,
        [{"role": "user", "content": [text("Hi"), text("again")]}],
    ),
    (
        "system between users still merges them",
        [*HI, {"role": "system", "content": "S"}, {"role": "user", "content": "again"}],
        "S",
        [{"role": "user", "content": [text("Hi"), text("again")]}],
    ),
    (
        "text parts",
        [{"role": "user", "content": [text("a"), text("b")]}],
        None,
        [{"role": "user", "content": [text("a"), text("b")]}],
    ),
    (
        "one text part collapses",
        [{"role": "user", "content": [text("a")]}],
        None,
        [{"role": "user", "content": "a"}],
    ),
    (
        "image data URL",
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}],
            }
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo=",
                        },
                    }
                ],
            }
        ],
    ),
    (
        "image https URL",
        [
            {
                "role": "user",
                "content": [
                    text("What?"),
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            }
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    text("What?"),
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                ],
            }
        ],
    ),
    (
        "assistant tool calls",
        [
            *HI,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    call("call_1", "get_weather", '{"city": "Paris"}'),
                    call("call_2", "now", ""),
                ],
            },
        ],
        None,
        [
            *HI,
            {
                "role": "assistant",
                "content": [
                    tool_use("call_1", "get_weather", {"city": "Paris"}),
                    tool_use("call_2", "now", {}),
                ],
            },
        ],
    ),
    (
        "assistant text and tool call, empty text dropped",
        [
            {"role": "assistant", "content": "Let me look.", "tool_calls": [call("c", "f", "{}")]},
            {"role": "assistant", "content": "", "tool_calls": [call("d", "f", "{}")]},
        ],
        None,
        [
            {
                "role": "assistant",
                "content": [text("Let me look."), tool_use("c", "f", {}), tool_use("d", "f", {})],
            }
        ],
    ),
    (
        "assistant refusal kept as text",
        [{"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}],
        None,
        [{"role": "assistant", "content": "No."}],
    ),
    (
        "assistant refusal field kept as text",
        [{"role": "assistant", "content": None, "refusal": "No."}],
        None,
        [{"role": "assistant", "content": "No."}],
    ),
    (
        "tool results merged into one user turn, then user text",
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("c1", "f", "{}"), call("c2", "f", "{}")],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": [text("two")]},
            {"role": "user", "content": "thanks"},
        ],
        None,
        [
            {"role": "assistant", "content": [tool_use("c1", "f", {}), tool_use("c2", "f", {})]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
                    {"type": "tool_result", "tool_use_id": "c2", "content": [text("two")]},
                    text("thanks"),
                ],
            },
        ],
    ),
    (
        "participant name dropped",
        [{"role": "user", "content": "Hi", "name": "ann"}],
        None,
        HI,
    ),
]


@pytest.mark.parametrize(
    ("messages", "system", "expected"),
    [c[1:] for c in CHAT_MESSAGES],
    ids=[c[0] for c in CHAT_MESSAGES],
)
def test_chat_messages_to_messages(
    messages: list[Any], system: str | None, expected: list[Any]
) -> None:
    params = to_anthropic(messages=messages)
    assert params.get("system") == system
    assert params["messages"] == expected


# --- OpenAI body → Anthropic: refused, naming the field ----------------------------------------

# (id, OpenAI fields, param named by the error, words the message must contain)
CHAT_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("n 3", {"n": 3}, "n", "n=3: Anthropic returns one reply per request; set n to 1."),
    ("n 0", {"n": 0}, "n", "set n to 1"),
    ("stream", {"stream": True}, "stream", "stream=true"),
    (
        "json_object",
        {"response_format": {"type": "json_object"}},
        "response_format",
        "'json_object'",
    ),
    (
        "json_schema",
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
        "response_format",
        "'json_schema'",
    ),
    (
        "unknown field",
        {"reasoning_effort": "high"},
        "reasoning_effort",
        "no Anthropic Messages equivalent",
    ),
    ("legacy functions", {"functions": [{"name": "f"}]}, "functions", "remove it"),
    ("two unknown fields", {"audio": {}, "modalities": ["audio"]}, "audio", "audio, modalities"),
    ("vLLM extra", {"min_p": 0.1}, "min_p", "min_p"),
    ("temperature not a number", {"temperature": "hot"}, "temperature", "expected a number"),
    ("max_tokens not an int", {"max_tokens": "10"}, "max_tokens", "expected an integer"),
    ("stop not strings", {"stop": ["a", 1]}, "stop[1]", "expected a string"),
    (
        "custom tool",
        {"tools": [{"type": "custom", "custom": {"name": "x"}}]},
        "tools[0].type",
        "only function tools",
    ),
    (
        "tool function extra",
        {"tools": [{"type": "function", "function": {"name": "f", "examples": [1]}}]},
        "tools[0].function.examples",
        "no Anthropic",
    ),
    (
        "tool_choice allowed_tools",
        {"tool_choice": {"type": "allowed_tools"}},
        "tool_choice",
        "auto, none, required",
    ),
    ("tool_choice bogus string", {"tool_choice": "sometimes"}, "tool_choice", "'sometimes'"),
    ("messages missing", {"messages": None}, "messages", "expected a list"),
    (
        "bad role",
        {"messages": [{"role": "function", "content": "x"}]},
        "messages[0].role",
        "'function'",
    ),
    (
        "audio part",
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        "messages[0].content[0].type",
        "'input_audio'",
    ),
    (
        "file part",
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]},
        "messages[0].content[0].type",
        "'file'",
    ),
    (
        "image in system",
        {
            "messages": [
                {"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}
            ]
        },
        "messages[0].content[0].type",
        "only text parts",
    ),
    (
        "image in tool result",
        {
            "messages": [
                {
                    "role": "tool",
                    "tool_call_id": "c",
                    "content": [{"type": "image_url", "image_url": {"url": PNG}}],
                }
            ]
        },
        "messages[0].content[0].type",
        "only text parts",
    ),
    (
        "ftp image",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y"}}],
                }
            ]
        },
        "messages[0].content[0].image_url.url",
        "base64 data URLs",
    ),
    (
        "non-base64 data URL",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:text/plain,hi"}}],
                }
            ]
        },
        "messages[0].content[0].image_url.url",
        "base64 data URLs",
    ),
    (
        "invalid JSON arguments",
        {"messages": [*HI, {"role": "assistant", "tool_calls": [call("c", "f", "{oops")]}]},
        "messages[1].tool_calls[0].function.arguments",
        "not valid JSON",
    ),
    (
        "array arguments",
        {"messages": [*HI, {"role": "assistant", "tool_calls": [call("c", "f", "[1, 2]")]}]},
        "messages[1].tool_calls[0].function.arguments",
        "not an object",
    ),
    (
        "custom tool call",
        {
            "messages": [
                {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}
            ]
        },
        "messages[0].tool_calls[0].type",
        "only function tool calls",
    ),
    (
        "legacy function_call in history",
        {"messages": [{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]},
        "messages[0].function_call",
        "no Anthropic",
    ),
    (
        "assistant audio",
        {"messages": [{"role": "assistant", "content": "x", "audio": {"id": "a"}}]},
        "messages[0].audio",
        "no Anthropic",
    ),
    (
        "tool message without id",
        {"messages": [{"role": "tool", "content": "r"}]},
        "messages[0].tool_call_id",
        "expected a string",
    ),
    (
        "content not a list",
        {"messages": [{"role": "user", "content": 3}]},
        "messages[0].content",
        "expected",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [c[1:] for c in CHAT_REFUSALS],
    ids=[c[0] for c in CHAT_REFUSALS],
)
def test_chat_refusals_name_the_field(fields: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(TranslationError) as info:
        to_anthropic(**fields)
    assert info.value.param == param
    assert info.value.message.startswith(param.split("[")[0])
    assert words in info.value.message


def test_translation_error_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as info:
        to_anthropic(n=2)
    assert info.value.code == "untranslatable"
    assert info.value.status == 400


# --- Anthropic params → OpenAI body: top-level settings ----------------------------------------

# (id, Anthropic fields, OpenAI fields expected; None = key absent)
MESSAGES_SETTINGS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("model copied", {}, {"model": "m"}),
    ("max_tokens", {}, {"max_tokens": 64, "max_completion_tokens": None}),
    ("temperature", {"temperature": 0.5}, {"temperature": 0.5}),
    ("top_p", {"top_p": 0.9}, {"top_p": 0.9}),
    ("top_k passed through", {"top_k": 40}, {"top_k": 40}),
    ("stop_sequences", {"stop_sequences": ["END", "STOP"]}, {"stop": ["END", "STOP"]}),
    ("metadata user_id", {"metadata": {"user_id": "u-1"}}, {"user": "u-1", "metadata": None}),
    ("metadata without user", {"metadata": {}}, {"user": None, "metadata": None}),
    ("stream false", {"stream": False}, {"stream": None}),
    ("thinking disabled", {"thinking": {"type": "disabled"}}, {"thinking": None}),
    ("service_tier dropped", {"service_tier": "auto"}, {"service_tier": None}),
    ("cache_control dropped", {"cache_control": {"type": "ephemeral"}}, {"cache_control": None}),
    ("tools", {"tools": [ANTHROPIC_TOOL]}, {"tools": [OPENAI_TOOL]}),
    (
        "custom tool, hints dropped",
        {
            "tools": [
                {
                    **ANTHROPIC_TOOL,
                    "type": "custom",
                    "strict": True,
                    "cache_control": {"type": "ephemeral"},
                }
            ]
        },
        {"tools": [OPENAI_TOOL]},
    ),
    ("tool_choice auto", {"tool_choice": {"type": "auto"}}, {"tool_choice": "auto"}),
    ("tool_choice none", {"tool_choice": {"type": "none"}}, {"tool_choice": "none"}),
    ("tool_choice any", {"tool_choice": {"type": "any"}}, {"tool_choice": "required"}),
    (
        "tool_choice tool",
        {"tool_choice": {"type": "tool", "name": "get_weather"}},
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    ),
    (
        "disable_parallel_tool_use",
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        {"tool_choice": "auto", "parallel_tool_calls": False},
    ),
    (
        "disable_parallel_tool_use false",
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": False}},
        {"tool_choice": "required", "parallel_tool_calls": None},
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [c[1:] for c in MESSAGES_SETTINGS],
    ids=[c[0] for c in MESSAGES_SETTINGS],
)
def test_messages_settings_to_chat(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = to_openai(**fields)
    assert {key: body.get(key) for key in expected} == expected


def test_ignored_messages_fields_are_listed() -> None:
    assert frozenset({"cache_control", "service_tier"}) == IGNORED_MESSAGES_FIELDS


# (id, Anthropic system (absent when None), Anthropic messages, OpenAI messages expected)
MESSAGES_TURNS: list[tuple[str, Any, list[Any], list[Any]]] = [
    ("plain user", None, HI, HI),
    ("system string", "Be brief.", HI, [{"role": "system", "content": "Be brief."}, *HI]),
    (
        "system blocks joined",
        [text("A"), {**text("B"), "cache_control": {"type": "ephemeral"}}],
        HI,
        [{"role": "system", "content": "A\nB"}, *HI],
    ),
    ("empty system dropped", "", HI, HI),
    (
        "system item inside messages kept in place",
        None,
        [*HI, {"role": "system", "content": "Now in French."}],
        [*HI, {"role": "system", "content": "Now in French."}],
    ),
    (
        "text blocks become parts",
        None,
        [
            {
                "role": "user",
                "content": [text("a"), {**text("b"), "cache_control": {"type": "ephemeral"}}],
            }
        ],
        [{"role": "user", "content": [text("a"), text("b")]}],
    ),
    (
        "base64 image",
        None,
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"},
                    }
                ],
            }
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}
                ],
            }
        ],
    ),
    (
        "url image",
        None,
        [
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}],
            }
        ],
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
            }
        ],
    ),
    (
        "assistant string",
        None,
        [*HI, {"role": "assistant", "content": "Hello"}],
        [*HI, {"role": "assistant", "content": "Hello"}],
    ),
    (
        "assistant tool_use, thinking dropped",
        None,
        [
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "redacted_thinking", "data": "x"},
                    text("Looking."),
                    tool_use("toolu_1", "get_weather", {"city": "Paris", "days": [1, 2]}),
                ],
            }
        ],
        [
            {
                "role": "assistant",
                "content": [text("Looking.")],
                "tool_calls": [call("toolu_1", "get_weather", '{"city":"Paris","days":[1,2]}')],
            }
        ],
    ),
    (
        "assistant only tool_use has null content",
        None,
        [{"role": "assistant", "content": [tool_use("t", "f", {})]}],
        [{"role": "assistant", "content": None, "tool_calls": [call("t", "f", "{}")]}],
    ),
    (
        "assistant only thinking has empty content",
        None,
        [
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "x", "signature": "s"}],
            }
        ],
        [{"role": "assistant", "content": ""}],
    ),
    (
        "non-ASCII arguments stay readable",
        None,
        [{"role": "assistant", "content": [tool_use("t", "f", {"city": "Zürich"})]}],
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("t", "f", '{"city":"Zürich"}')],
            }
        ],
    ),
    (
        "tool results become tool messages before the user's text",
        None,
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": "one",
                        "is_error": True,
                    },
                    {"type": "tool_result", "tool_use_id": "t2", "content": [text("two")]},
                    {"type": "tool_result", "tool_use_id": "t3"},
                    text("thanks"),
                ],
            }
        ],
        [
            {"role": "tool", "tool_call_id": "t1", "content": "one"},
            {"role": "tool", "tool_call_id": "t2", "content": [text("two")]},
            {"role": "tool", "tool_call_id": "t3", "content": ""},
            {"role": "user", "content": [text("thanks")]},
        ],
    ),
]


@pytest.mark.parametrize(
    ("system", "messages", "expected"),
    [c[1:] for c in MESSAGES_TURNS],
    ids=[c[0] for c in MESSAGES_TURNS],
)
def test_messages_turns_to_chat(system: Any, messages: list[Any], expected: list[Any]) -> None:
    fields: dict[str, Any] = {"messages": messages}
    if system is not None:
        fields["system"] = system
    assert to_openai(**fields)["messages"] == expected


# (id, Anthropic fields, param named by the error, words the message must contain)
MESSAGES_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("stream", {"stream": True}, "stream", "stream=true"),
    (
        "thinking enabled",
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        "thinking",
        "'enabled'",
    ),
    ("thinking adaptive", {"thinking": {"type": "adaptive"}}, "thinking", "'adaptive'"),
    ("container", {"container": "container_1"}, "container", "no OpenAI chat equivalent"),
    ("mcp_servers", {"mcp_servers": [{"type": "url"}]}, "mcp_servers", "no OpenAI chat equivalent"),
    ("output_config", {"output_config": {"effort": "low"}}, "output_config", "no OpenAI chat"),
    ("inference_geo", {"inference_geo": "eu"}, "inference_geo", "no OpenAI chat"),
    (
        "server tool",
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        "tools[0].type",
        "server tools",
    ),
    (
        "tool extra field",
        {"tools": [{**ANTHROPIC_TOOL, "input_examples": [{}]}]},
        "tools[0].input_examples",
        "no OpenAI",
    ),
    ("tool without schema", {"tools": [{"name": "f"}]}, "tools[0].input_schema", "JSON Schema"),
    ("tool_choice bogus", {"tool_choice": {"type": "maybe"}}, "tool_choice.type", "'maybe'"),
    (
        "metadata user not str",
        {"metadata": {"user_id": 5}},
        "metadata.user_id",
        "expected a string",
    ),
    ("bad role", {"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "'tool'"),
    (
        "message extra key",
        {"messages": [{"role": "user", "content": "x", "name": "a"}]},
        "messages[0].name",
        "no OpenAI",
    ),
    (
        "document block",
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
        "messages[0].content[0].type",
        "'document'",
    ),
    (
        "file image source",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ]
        },
        "messages[0].content[0].source.type",
        "'file'",
    ),
    (
        "image in tool_result",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [
                                {"type": "image", "source": {"type": "url", "url": "https://x"}}
                            ],
                        }
                    ],
                }
            ]
        },
        "messages[0].content[0].content[0].type",
        "only text",
    ),
    (
        "server_tool_use in history",
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "server_tool_use", "id": "s", "name": "web_search"}],
                }
            ]
        },
        "messages[0].content[0].type",
        "'server_tool_use'",
    ),
    (
        "image block in system",
        {"system": [{"type": "image", "source": {}}]},
        "system[0].type",
        "only text",
    ),
    (
        "tool_use input not an object",
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}],
                }
            ]
        },
        "messages[0].content[0].input",
        "expected an object",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [c[1:] for c in MESSAGES_REFUSALS],
    ids=[c[0] for c in MESSAGES_REFUSALS],
)
def test_messages_refusals_name_the_field(fields: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(TranslationError) as info:
        to_openai(**fields)
    assert info.value.param == param
    assert info.value.message.startswith(param.split("[")[0])
    assert words in info.value.message


# --- both ways -----------------------------------------------------------------------------------


def test_a_full_conversation_survives_the_round_trip() -> None:
    body = {
        "model": "m",
        "max_tokens": 100,
        "temperature": 0.2,
        "stop": ["END"],
        "user": "u",
        "tools": [OPENAI_TOOL],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("c1", "get_weather", '{"city":"Paris"}')],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
            {"role": "assistant", "content": "Sunny."},
        ],
    }
    back = messages_request_to_chat(chat_request_to_messages(body))
    assert back == {**body, "stop": ["END"]}
