"""Where items are released relative to their bin (docs/success_vs_delay.md, anomalies).

Usage: python benchmarks/release_offsets.py <mode> <d,d,...> <first seed> <end seed> <s> [rtc-eval options], e.g.
``python benchmarks/release_offsets.py stop 0,8,16,24 0 12 25 --policy-config twin_pi05 --twin-config
config/twin_world_learned.yaml``. Prints per d the success and the release offsets; writes out/release_<mode>_s<s>.json.

Where items are released relative to their bin: signed conveyor-axis offset (item y − nearest bin y) [mm] at the
tick the gripper lets go, per d; positive = released ahead of the bin (before it arrives), negative = behind."""
import sys, json, dataclasses, collections
import numpy as np
from rtc_controller.tools import eval as ev
from rtc_controller.tools.eval_run import Evaluator
from rtc_controller.policy.inference_loop import InferenceLoop, LoopSettings
from rtc_controller.sim.episode import EpisodeConfig, EpisodeRunner
from rtc_controller.tools.eval_config import inference_values

argv = sys.argv[1:]
mode, delays, seeds, s = argv[0], [int(x) for x in argv[1].split(",")], range(int(argv[2]), int(argv[3])), int(argv[4])
extra = argv[5:]
p = ev.build_parser(); o = p.parse_args(["--execution-horizons", str(s)] + extra)
methods, rows, _ = ev._grid(o, p)
cfg = ev._config(o, p, rows)
E = Evaluator(cfg)
out = collections.defaultdict(list)
for d in delays:
    for seed in seeds:
        values, executor = E.executor(s)
        pv = inference_values(dataclasses.replace(cfg, execution_horizon=s), mode=mode, delay=d)
        runner = EpisodeRunner(E.world, executor, EpisodeConfig(latency_s=float(pv["extra_latency_s"]),
                               state_rate_hz=values["state_rate_hz"], camera_slots=cfg.camera_slots), renderer=E.renderer)
        loop = InferenceLoop(cfg.horizon, cfg.dt_s, history_capacity=int(pv["chunk_history"]), seed=seed)
        w = E.world; prev = {"held": None}; rel = []
        def on_tick(t, w=w, prev=prev, rel=rel):
            if int(round(t * 1000)) % 5: return
            h = w.held().copy()
            if prev["held"] is not None:
                for item in range(len(h)):
                    if prev["held"][item] >= 0 and h[item] < 0:
                        pos = w.item_positions()[item]
                        bins = w.bins(w.time_s)
                        b = bins[np.argmin(np.linalg.norm(bins[:, :2] - pos[:2], axis=1))]
                        rel.append(((pos[1] - b[1]) * 1e3, (pos[0] - b[0]) * 1e3, t))
            prev["held"] = h
        res = runner.run(seed, loop=loop, settings=LoopSettings.from_params(pv, cfg.horizon),
                         make_chunk=lambda obs, plan: loop.sample(E.sampler, obs, plan).actions, on_tick=on_tick)
        out[d].append({"seed": seed, "success": res.success, "phase": res.failure_phase, "release": rel})
    dy = [r[0] for e in out[d] for r in e["release"]]; dx = [r[1] for e in out[d] for r in e["release"]]
    print(f"{mode} d={d}: success {sum(e['success'] for e in out[d])}/{len(out[d])}; releases {len(dy)}; "
          f"y offset mean {np.mean(dy):.1f} mm, median {np.median(dy):.1f}, std {np.std(dy):.1f}; x offset mean {np.mean(dx):.1f}", flush=True)
json.dump(out, open(f"out/release_{mode}_s{s}.json", "w"))
