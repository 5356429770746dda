"""JAX's persistent compilation cache for the inference node, and a counter of what a start actually compiled.

A restart of the inference node compiles the same programs again (every guidance mode, every prompt bucket, the
prefix pass): with the cache on, the compiled executables are read back from ``directory`` instead. JAX keys each
entry by the program, the compile options, the backend and the jax/jaxlib versions, so one directory can serve
several policies, versions and devices; a stale entry is never used, only missed.

:func:`enable` checks that the directory can be created and written before JAX uses it (JAX itself only warns and
silently compiles everything again). :class:`CompileCounter` counts, while it is open, the backend compilations
(``/jax/core/compile/backend_compile_duration`` events, which a cache read also emits) and the cache hits and
misses, from JAX's monitoring events; ``compiled`` = programs not read from the cache.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
CACHE_MISS_EVENT = "/jax/compilation_cache/cache_misses"
PARAM = "compilation_cache_dir"


class CompilationCacheError(ValueError):
    """The cache directory cannot be used; the message names the parameter, the value and the reason."""


def check_directory(directory: str | os.PathLike) -> Path:
    """``directory`` (``~`` expanded), created if needed, after a test write; raises :class:`CompilationCacheError`."""
    path = Path(os.path.expanduser(str(directory)))
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test_"):
            pass
    except OSError as exc:
        raise CompilationCacheError(f"{PARAM} = {str(directory)!r}: cannot write there ({exc.strerror or exc}); "
                                    "set a writable directory or '' to compile at every start") from exc
    return path


def enable(directory: str | os.PathLike) -> Path | None:
    """Turn the persistent cache on at ``directory`` (every program, however fast it compiled); '' leaves it off.

    Call before the first compilation of the process (JAX initialises its cache on first use)."""
    if not str(directory):
        return None
    import jax

    path = check_directory(directory)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


@dataclass
class CompileCounts:
    programs: int = 0  # programs the backend was asked for (compiled or read from the cache)
    cache_hits: int = 0
    cache_misses: int = 0
    compile_s: float = 0.0  # time in the backend's compile step, cache reads included [s]

    @property
    def compiled(self) -> int:
        """Programs compiled from scratch (not read from the persistent cache)."""
        return self.programs - self.cache_hits


class CompileCounter:
    """``with CompileCounter() as c: ...`` then ``c.counts``: what JAX compiled inside the block (this process)."""

    def __init__(self) -> None:
        self.counts = CompileCounts()
        self._active = False

    def _event(self, name: str, **_) -> None:
        if self._active and name == CACHE_HIT_EVENT:
            self.counts.cache_hits += 1
        elif self._active and name == CACHE_MISS_EVENT:
            self.counts.cache_misses += 1

    def _duration(self, name: str, secs: float, **_) -> None:
        if self._active and name == BACKEND_COMPILE_EVENT:
            self.counts.programs += 1
            self.counts.compile_s += float(secs)

    def __enter__(self) -> CompileCounter:
        from jax import monitoring

        monitoring.register_event_listener(self._event)
        monitoring.register_event_duration_secs_listener(self._duration)
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        from jax._src import monitoring  # the unregister functions are not re-exported by jax.monitoring

        self._active = False
        monitoring.unregister_event_listener(self._event)
        monitoring.unregister_event_duration_listener(self._duration)
