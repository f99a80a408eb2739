"""gateway/lazy.py: a cached property that threads asking first together build once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.app import App
from gateway.config import default_config
from gateway.lazy import shared_cached_property

THREADS = 4


class Slow:
    """Its value's build waits, up to a bound, for every thread to be building too."""

    def __init__(self) -> None:
        self.builds = 0
        self.all_building = threading.Barrier(THREADS, timeout=1)

    @shared_cached_property
    def value(self) -> object:
        self.builds += 1
        try:
            self.all_building.wait()  # without the lock all threads get here at once
        except threading.BrokenBarrierError:
            pass  # with it, no other thread comes in: the bound, not a pause
        return object()


def test_threads_asking_first_together_get_one_value_built_once() -> None:
    slow = Slow()
    start = threading.Barrier(THREADS)

    def ask(_: int) -> object:
        start.wait()
        return slow.value

    with ThreadPoolExecutor(THREADS) as pool:
        values = list(pool.map(ask, range(THREADS)))
    assert slow.builds == 1
    assert all(value is values[0] for value in values)
    assert slow.value is values[0] and "value" in vars(slow)  # kept on the instance


def test_the_app_builds_one_engine_for_all_its_threads(tmp_path: Path) -> None:
    app = App(default_config(tmp_path / "var"))
    start = threading.Barrier(THREADS)

    def ask(_: int) -> object:
        start.wait()
        return app.engine

    with ThreadPoolExecutor(THREADS) as pool:
        engines = set(map(id, pool.map(ask, range(THREADS))))
    try:
        assert engines == {id(app.engine)}
    finally:
        app.engine.dispose()


def test_read_on_the_class_it_is_the_descriptor() -> None:
    assert isinstance(vars(Slow)["value"], shared_cached_property)
    assert isinstance(Slow.value, shared_cached_property)
