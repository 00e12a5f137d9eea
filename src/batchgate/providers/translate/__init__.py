"""Translation between the two dialects: Chat Completions ⇄ Messages, requests, replies, errors.

Pure functions over JSON-shaped dicts (no I/O), used when a batch's dialect differs from its
upstream's. A request that cannot be carried faithfully raises TranslationError (an
InvalidRequest, code ``untranslatable``, ``param`` naming the field): the engine writes it as an
error line instead of sending a different request.
"""

from batchgate.providers.translate.chat_to_messages import (
    DEFAULT_MAX_TOKENS,
    IGNORED_CHAT_FIELDS,
    chat_request_to_messages,
)
from batchgate.providers.translate.common import TranslationError, chat_id, message_id
from batchgate.providers.translate.envelopes import (
    anthropic_error_from_openai,
    openai_error_from_anthropic,
)
from batchgate.providers.translate.messages_to_chat import (
    IGNORED_MESSAGES_FIELDS,
    messages_request_to_chat,
)
from batchgate.providers.translate.replies import (
    FINISH_REASONS,
    STOP_REASONS,
    chat_reply_to_message,
    chat_usage,
    message_usage,
    messages_reply_to_chat,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASONS",
    "IGNORED_CHAT_FIELDS",
    "IGNORED_MESSAGES_FIELDS",
    "STOP_REASONS",
    "TranslationError",
    "anthropic_error_from_openai",
    "chat_id",
    "chat_reply_to_message",
    "chat_request_to_messages",
    "chat_usage",
    "message_id",
    "message_usage",
    "messages_reply_to_chat",
    "messages_request_to_chat",
    "openai_error_from_anthropic",
]
