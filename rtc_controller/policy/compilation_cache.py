"""JAX's persistent compilation cache for the inference node and the benchmarks, and a compile counter.

A restart with the same cache directory loads every compiled executable the warm-up needs instead of compiling it
again (the warm-up still runs every shape and mode: a load is a cache hit, not a skipped shape). Entries live under
``<base>/<key>``, the key naming the jax version, the backend and the model, so caches of different jax installs,
devices or policies never share a directory (jax's own entry keys also hash the computation and the compile options;
the subdirectory keeps them apart for cleaning and for measuring one of them). ROS-free; jax is imported lazily.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CompileCounter", "cache_dir_refusal", "cache_key", "enable_compilation_cache"]

_HIT_EVENT = "/jax/compilation_cache/cache_hits"
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # every XLA compile request: a compile or a cache hit


def cache_key(model: str) -> str:
    """``jax<version>-<backend>-<model>``: the subdirectory of one jax install, backend and model."""
    import jax

    safe_model = re.sub(r"[^A-Za-z0-9_.-]+", "_", model) or "model"
    return f"jax{jax.__version__}-{jax.default_backend()}-{safe_model}"


def cache_dir_refusal(value: object, key: str = "compilation_cache_dir") -> str | None:
    """Why ``value`` cannot be the cache base directory (None: '' (off) or a directory we can create and write).

    ``~`` is expanded; a missing directory is created (its parents too); a probe file is written and removed."""
    if not isinstance(value, str):
        return f"{key} must be a string (a directory, '' = off), got {value!r}"
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        return f"{key} {value!r} is not a writable directory: {exc.strerror or exc} ({exc.filename or path})"
    return None


def enable_compilation_cache(base: str, model: str, key: str = "compilation_cache_dir") -> Path | None:
    """Point jax's persistent cache at ``<base>/<cache_key(model)>`` and cache every executable (no size or
    compile-time threshold); ``base`` '' leaves the cache off (returns None). Raises ValueError naming ``key``
    when the directory is not writable. Call before the first compile of the process."""
    if (why := cache_dir_refusal(base, key)) is not None:
        raise ValueError(why)
    if not base:
        return None
    import jax

    directory = Path(os.path.expanduser(base)) / cache_key(model)
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _reset_jax_cache_state()
    return directory


def _reset_jax_cache_state() -> None:
    """jax initialises its cache object once per process; a directory set later needs it re-initialised."""
    try:
        from jax._src import compilation_cache as cc
    except ImportError:  # pragma: no cover - jax internals moved: the config update above is what counts
        return
    reset = getattr(cc, "reset_cache", None)
    if reset is not None:
        reset()


@dataclass
class CompileCounter:
    """XLA compile requests while active, split into real compiles and persistent-cache hits (jax monitoring).

    ``with CompileCounter() as c: ...`` then ``c.compiled`` (executables built by XLA) and ``c.cache_hits``
    (executables loaded from the persistent cache). Counts requests of every thread while active."""

    requests: int = 0
    cache_hits: int = 0
    compile_s: float = 0.0  # wall time of the compile requests (compiles and loads) [s]
    _active: bool = field(default=False, repr=False)

    @property
    def compiled(self) -> int:
        return self.requests - self.cache_hits

    def _on_event(self, event: str, **_: object) -> None:
        if self._active and event == _HIT_EVENT:
            self.cache_hits += 1

    def _on_duration(self, event: str, duration_secs: float, **_: object) -> None:
        if self._active and event == _COMPILE_EVENT:
            self.requests += 1
            self.compile_s += float(duration_secs)

    def __enter__(self) -> CompileCounter:
        from jax import monitoring

        monitoring.register_event_listener(self._on_event)
        monitoring.register_event_duration_secs_listener(self._on_duration)
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        from jax import monitoring

        self._active = False
        for unregister, callback in ((monitoring.unregister_event_listener, self._on_event),
                                     (monitoring.unregister_event_duration_listener, self._on_duration)):
            try:
                unregister(callback)
            except (AssertionError, ValueError):  # pragma: no cover - already gone (jax cleared its listeners)
                pass
