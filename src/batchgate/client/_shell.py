"""Methods written once for both clients. A resource method is a sans-IO spec (its public
signature and docstring, returning what to send); ``answer`` or ``stream`` turns it into a
descriptor that hands the spec's result to the resource's sender, blocking or async. Its
``__get__`` overloads give type checkers and IDEs each client's own signature."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from batchgate.client._flows import Answerable, Chunks, Cursor, ResultPages
from batchgate.client._http import AsyncSender, SyncSender

P = ParamSpec("P")
T = TypeVar("T")
X = TypeVar("X")
Snd = TypeVar("Snd", bound=SyncSender | AsyncSender)


class Resource(Generic[Snd]):
    def __init__(self, sender: Snd) -> None:
        self._send: Snd = sender


class _Method(Generic[P, X]):
    """What ``answer`` and ``stream`` share: the spec, and binding it to a resource."""

    def __init__(self, spec: Callable[Concatenate[Any, P], X]) -> None:
        self._spec = spec
        self._signature = _public_signature(spec)
        functools.update_wrapper(self, spec)  # type: ignore[arg-type]  # name and doc only

    def _sender_method(self, sender: SyncSender | AsyncSender) -> Callable[[Any], Any]:
        raise NotImplementedError

    def _bind(self, resource: Resource[Any] | None) -> Any:
        if resource is None:
            return self
        spec, send = self._spec, self._sender_method(resource._send)

        # The sender gets a thunk: an async sender builds the call only once awaited, as
        # an ``async def`` method would.
        def method(*args: Any, **kwargs: Any) -> Any:
            return send(lambda: spec(resource, *args, **kwargs))

        functools.update_wrapper(method, spec)
        method.__signature__ = self._signature  # type: ignore[attr-defined]
        return method


def _public_signature(spec: Callable[..., Any]) -> inspect.Signature:
    """The spec's signature as users see it: no ``self``, no sans-IO return type."""
    sig = inspect.signature(spec)
    params = list(sig.parameters.values())[1:]
    return sig.replace(parameters=params, return_annotation=inspect.Signature.empty)


class Answer(_Method[P, Answerable[T]], Generic[P, T]):
    """A method that returns one value (``await`` it on the async client)."""

    def _sender_method(self, sender: SyncSender | AsyncSender) -> Callable[[Any], Any]:
        return sender.answer

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Resource[SyncSender], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: Resource[AsyncSender], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        return self._bind(obj)


class Stream(_Method[P, Any], Generic[P, T]):
    """A method that returns an iterator (an async iterator on the async client)."""

    def _sender_method(self, sender: SyncSender | AsyncSender) -> Callable[[Any], Any]:
        return sender.iterate

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Resource[SyncSender], owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(
        self, obj: Resource[AsyncSender], owner: type[Any]
    ) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        return self._bind(obj)


def answer(spec: Callable[Concatenate[Any, P], Answerable[T]]) -> Answer[P, T]:
    return Answer(spec)


@overload
def stream(spec: Callable[Concatenate[Any, P], Chunks]) -> Stream[P, bytes]: ...
@overload
def stream(spec: Callable[Concatenate[Any, P], Cursor[T] | ResultPages[T]]) -> Stream[P, T]: ...
def stream(spec: Callable[Concatenate[Any, P], Any]) -> Stream[P, Any]:
    return Stream(spec)
