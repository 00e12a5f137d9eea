"""Deterministic text for simulated replies: token estimates, message-content flattening and
reply text seeded from a hash of the prompt."""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fern",
    "grove",
    "harbor",
    "iris",
    "jade",
    "kelp",
    "lotus",
    "maple",
    "nectar",
    "olive",
    "pearl",
    "quartz",
    "river",
    "sage",
    "thyme",
    "umber",
    "violet",
    "willow",
    "yarrow",
    "zephyr",
    "atlas",
    "beacon",
    "comet",
    "drift",
    "estuary",
    "fjord",
    "glacier",
    "horizon",
    "island",
    "jetty",
    "kestrel",
    "lagoon",
    "meadow",
]
assert len(_WORDS) == 64  # indexed by the low 6 bits of a hash byte

LEAD_CHARS = 40  # how much of the prompt a reply quotes


def estimate_tokens(text: str) -> int:
    """A rough token count: ceil(chars / 4), the usual rule of thumb for English."""
    return (len(text) + 3) // 4


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the ``text`` of each part in a list
    of parts (``{"type": "text" | "input_text" | ..., "text": ...}``) joined by spaces.
    Anything else (None, images, audio) contributes no text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def reply_text(lead: str, prompt: str, seed_text: str) -> str:
    """``lead`` + the first 40 chars of ``prompt`` (whitespace collapsed), a newline, then 8 to
    40 filler words chosen by a hash of ``seed_text``: the same inputs give the same text."""
    digest = blake2b(seed_text.encode("utf-8", "surrogatepass"), digest_size=64).digest()
    count = 8 + digest[0] % 33
    filler = " ".join([_WORDS[b & 63] for b in digest[1 : 1 + count]])
    quoted = " ".join(prompt[:LEAD_CHARS].split())
    return f"{lead}{quoted}\n{filler}"


def truncate(text: str, limit: int | None) -> tuple[str, int, bool]:
    """(text, completion tokens, truncated): ``text`` cut to ``limit`` tokens when it is
    longer than that (at 4 chars a token), else unchanged. At least 1 token is reported."""
    tokens = max(1, estimate_tokens(text))
    if limit is not None and tokens > limit:
        return text[: limit * 4], limit, True
    return text, tokens, False


def conversation_reply(
    model: str, texts: list[str], last_user: str, limit: int | None
) -> tuple[str, int, bool]:
    """(text, completion tokens, truncated) of the reply to a conversation: ``texts`` are the
    messages' texts in order (a system prompt first), ``last_user`` the last user message's.
    Chat completions and Anthropic messages both answer with it, so a request translated from
    one API to the other gets the same text."""
    seed_text = model + "\x00" + "\x00".join(texts)
    return truncate(reply_text("Simulated reply to: ", last_user or texts[-1], seed_text), limit)


def conversation_tokens(texts: list[str]) -> int:
    """The prompt token count of a conversation: each message's text plus 4 (at least 1)."""
    return max(1, sum(estimate_tokens(text) + 4 for text in texts))
