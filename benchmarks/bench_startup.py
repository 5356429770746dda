"""Inference-node start-up, cold vs warm compilation cache: process start -> policy loaded -> every mode compiled
and warmed -> first chunk, each start in a fresh process (as a restarted node).

The policy is the node's: ``policy: pi05`` with the committed twin checkpoint (``policy_config: twin_pi05``, a
reduced-size π0.5 on the CPU) or ``--policy sim``. "cold" starts with an empty cache directory, "warm" restarts with
the one the cold start filled.

    python benchmarks/bench_startup.py                      # twin π0.5, 2 cold + 2 warm starts
    python benchmarks/bench_startup.py --policy sim --json /tmp/startup.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

START = r"""
import json, sys, time
t0 = time.monotonic()
from rtc_controller.policy import compilation_cache
compilation_cache.enable(sys.argv[1])
from rtc_controller.policy.chunk_sampler import ChunkSampler, GuidanceSettings
from rtc_controller.policy.registry import make_policy
with compilation_cache.CompileCounter() as c:
    if sys.argv[2] == "sim":
        policy = make_policy("sim", horizon=50, dt_s=0.02)
    else:  # the node's construction of a π0.5 from its policy section
        from rtc_controller.ros.inference_params import PARAMETERS, policy_params, policy_section
        p = {k: v.default for k, v in PARAMETERS.items()} | {"policy": "pi05", "policy_config": sys.argv[2]}
        section = policy_section(p, 50)
        policy = make_policy("pi05", **policy_params(p, section=section, horizon=50, dt_s=0.02,
                                                    names=tuple(section.action_names)))
    t_loaded = time.monotonic()
    sampler = ChunkSampler(policy, dt_s=0.02, num_steps=10)
    sampler.warmup(None)
    t_warm = time.monotonic()
    first = sampler.sample(policy.fake_observation(), previous=None, settings=GuidanceSettings(0, 25),
                           key=__import__("jax").random.key(1))
    t_first = time.monotonic()
print(json.dumps({"load_s": t_loaded - t0, "warmup_s": t_warm - t_loaded, "first_chunk_s": t_first - t0,
                  "compiled": c.counts.compiled, "cache_hits": c.counts.cache_hits}))
"""


def start(cache: Path, policy: str) -> dict:
    out = subprocess.run([sys.executable, "-c", START, str(cache), policy], capture_output=True, text=True,
                         timeout=900)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"start failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="twin_pi05", help="a π0.5 policy config (default twin_pi05) or 'sim'")
    ap.add_argument("--repeats", type=int, default=2, help="cold and warm starts each")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args(argv)
    rows = []
    for k in range(a.repeats):
        cache = Path(tempfile.mkdtemp(prefix="rtc_jax_cache_"))
        try:
            rows.append(("cold", start(cache, a.policy)))
            rows.append(("warm", start(cache, a.policy)))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"start-up of the inference node's policy ({a.policy}), each start a fresh process")
    print("| start | load [s] | compile + warm every mode [s] | start to first chunk [s] | compiled | cache hits |")
    print("|---|---|---|---|---|---|")
    for kind, r in rows:
        print(f"| {kind} | {r['load_s']:.1f} | {r['warmup_s']:.1f} | {r['first_chunk_s']:.1f} | {r['compiled']} | "
              f"{r['cache_hits']} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"policy": a.policy, "starts": [{"kind": k, **r} for k, r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
