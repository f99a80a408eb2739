"""A cached property built once, even when several threads ask for it first together.

In: a method that builds a value from its instance. Out: a descriptor like
`functools.cached_property` (the value is kept in the instance's `__dict__`, so later
reads cost nothing) whose first build holds a lock.

Python 3.12 removed `cached_property`'s lock. The worker's threads ask for `App.engine`
first together (the `process` command touches nothing before), and on Python 3.13 each
built an engine of its own: the ones not kept were never disposed, their SQLite
connections left to the garbage collector (a ResourceWarning), and two `App.gpg` would
each cap gpg processes on their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

_T = TypeVar("_T")


class shared_cached_property(Generic[_T]):
    def __init__(self, build: Callable[[Any], _T]) -> None:
        self._build = build
        self._name = build.__name__
        self._lock = threading.RLock()
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> shared_cached_property[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        with self._lock:
            kept = instance.__dict__
            if self._name not in kept:
                kept[self._name] = self._build(instance)
            return kept[self._name]
