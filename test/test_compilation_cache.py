"""The inference node's persistent compilation cache: a restart compiles nothing its first start compiled, and a
directory that cannot be written is refused with the parameter, the value and the reason."""

import json
import subprocess
import sys
import textwrap

from rtc_controller.policy.compilation_cache import CompilationCacheError, check_directory
from rtc_controller.ros.inference_params import validate_parameter

START = textwrap.dedent("""
    import json, sys
    from rtc_controller.policy import compilation_cache
    compilation_cache.enable(sys.argv[1])
    from rtc_controller.policy.chunk_sampler import ChunkSampler
    from rtc_controller.policy.registry import make_policy
    with compilation_cache.CompileCounter() as c:  # what the inference worker does at start: load, warm every mode
        sampler = ChunkSampler(make_policy("sim", horizon=20, dt_s=0.02), dt_s=0.02, num_steps=3)
        sampler.warmup(None)
    print(json.dumps({"compiled": c.counts.compiled, "hits": c.counts.cache_hits, "programs": c.counts.programs}))
""")


def _start(cache_dir) -> dict:
    out = subprocess.run([sys.executable, "-c", START, str(cache_dir)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_restart_reads_every_program_from_the_cache(tmp_path):
    cold = _start(tmp_path / "jax")
    warm = _start(tmp_path / "jax")
    assert cold["compiled"] > 0 and cold["hits"] == 0
    assert warm["programs"] == cold["programs"]  # the warm-up still covers every shape and mode
    assert warm["compiled"] == 0 and warm["hits"] == cold["programs"]


def test_an_unwritable_directory_is_refused_with_the_key_and_the_reason(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # a directory cannot be made under a regular file (chmod does not stop root)
    bad = str(blocker / "jax")
    why = validate_parameter("compilation_cache_dir", bad, horizon=50)
    assert why is not None and "compilation_cache_dir" in why and bad in why and "cannot write" in why
    try:
        check_directory(bad)
    except CompilationCacheError as exc:
        assert str(exc) == why
    else:
        raise AssertionError("an unwritable directory was accepted")
    assert validate_parameter("compilation_cache_dir", "", horizon=50) is None  # '' = off
    assert validate_parameter("compilation_cache_dir", str(tmp_path / "new" / "jax"), horizon=50) is None
    assert (tmp_path / "new" / "jax").is_dir()
