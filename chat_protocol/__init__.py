"""The IRC vocabulary every distchat part shares: messages, casefolding, numerics, splitting."""

from chat_protocol.casemap import casefold, is_channel, valid_channel, valid_nick
from chat_protocol.message import Message, MessageError, split_source
from chat_protocol.split import split_message, split_utf8

__all__ = [
    "Message",
    "MessageError",
    "casefold",
    "is_channel",
    "split_message",
    "split_source",
    "split_utf8",
    "valid_channel",
    "valid_nick",
]
