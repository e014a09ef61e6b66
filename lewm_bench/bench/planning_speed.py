"""``lewm-bench run --suite planning-speed``: the paper's planning-time table (Fig. 3 view).

Planning time per call of LeWM, PLDM and DINO-WM-style at the profile's architectures (``paper``:
the paper's, with CEM 300 x 30, top 30, horizon 5), one episode at a time as in the paper, with
random weights (the time does not depend on them), on this machine's device. Where a full call is
infeasible (DINO-WM at ``paper`` size on a CPU: ~45 min per call) the call is timed with a few CEM
iterations and the 30-iteration time is extrapolated as encode + iterations x per-iteration time;
such rows say so in ``measured``. Speed-ups are against DINO-WM measured in the same run; the
paper's figures (0.98 s vs 47 s per call on one NVIDIA L40S, 48x) sit beside them.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lewm_bench.bench.planning import time_calls
from lewm_bench.io import save_figure, write_csv, write_json, write_text
from lewm_bench.paper import paper_plan_time
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import Profile
from lewm_bench.provenance import default_device, device_name, machine
from lewm_bench.registry import agents, get_agent

REFERENCE = "dinowm"
"""The agent speed-ups are measured against (the paper's table compares with DINO-WM)."""
COLUMNS = ["agent", "plan_time_s", "measured", "speedup_vs_dinowm", "paper_plan_time_s", "paper_speedup",
           "tokens_per_frame", "encoder_tokens_per_frame", "predictor_tokens_per_call", "params_trainable",
           "params_frozen", "image_size", "cem", "device"]


def planning_speed(profile: Profile, out: str | Path, calls: int | None = None, warmup: int | None = None,
                   partial_iterations: int = 3, full_limit_s: float = 120.0,
                   agent_names: tuple[str, ...] | None = None, reference: str = REFERENCE) -> pd.DataFrame:
    """Measure the table and write ``planning_speed.{csv,md,json,png}`` to ``out``.

    Args:
        agent_names: the world models to time (default: every grid world model, ``reference`` included).
        calls: timed calls per agent (default 20 on CUDA, 3 on CPU) after ``warmup`` (3 / 1).
        partial_iterations: CEM iterations timed when a full call is estimated to exceed ``full_limit_s``.
    """
    from lewm_bench.evaluation.run import predictor_tokens_per_call
    from lewm_bench.models.layers import count_parameters

    device = default_device()
    calls = calls or (20 if device.type == "cuda" else 3)
    warmup = warmup if warmup is not None else (3 if device.type == "cuda" else 1)
    cem = profile.cem
    image = profile.data_for("pusht").image_size
    rows: list[dict[str, Any]] = []
    names = agent_names or tuple(n for n, i in agents().items() if i.in_grid and i.kind == "world_model")
    if reference not in names:
        names = (*names, reference)
    for agent in names:
        info = get_agent(agent)
        torch.manual_seed(0)
        model = info.cls(info.config_for(profile.name), image, 2 * profile.frameskip).to(device).eval()
        # one 1-iteration call after a warm-up: decides between full calls and the extrapolation
        probe = time_calls(model, CEM(dataclasses.replace(cem, iterations=1)), 1, image, 1, device, 1, 1)[0]
        if probe * cem.iterations <= full_limit_s:
            times = time_calls(model, CEM(cem), 1, image, 1, device, calls, warmup)
            seconds, measured = statistics.median(times), f"median of {calls} full calls"
        else:  # per-iteration time from calls of k and 1 iterations; the 1-iteration call carries the encoding
            k = max(partial_iterations, 2)
            t_k = time_calls(model, CEM(dataclasses.replace(cem, iterations=k)), 1, image, 1, device, 1, 0)[0]
            per_iter = (t_k - probe) / (k - 1)
            seconds = probe + (cem.iterations - 1) * per_iter
            measured = (f"extrapolated: {per_iter:.1f} s per iteration from calls of {k} and 1 iterations, "
                        f"x {cem.iterations}")
        tokens = model.tokens_per_frame
        rows.append({"agent": agent, "plan_time_s": seconds, "measured": measured,
                     "paper_plan_time_s": paper_plan_time(agent), "tokens_per_frame": tokens,
                     "encoder_tokens_per_frame": model.encoder_tokens_per_frame,
                     "predictor_tokens_per_call": predictor_tokens_per_call(cem, 1, model.history, tokens),
                     "params_trainable": count_parameters(model, True), "params_frozen": count_parameters(model, False),
                     "image_size": image, "cem": f"{cem.candidates}x{cem.iterations} top{cem.elites} h{cem.horizon}",
                     "device": device_name(device)})
        del model
    ref = next(r["plan_time_s"] for r in rows if r["agent"] == reference)
    ref_paper = paper_plan_time(reference)
    for r in rows:
        r["speedup_vs_dinowm"] = ref / r["plan_time_s"]
        paper = paper_plan_time(r["agent"])
        r["paper_speedup"] = ref_paper / paper if paper and ref_paper else None
    table = pd.DataFrame(rows, columns=COLUMNS)
    out = Path(out)
    write_csv(out / "planning_speed.csv", table)
    write_json(out / "planning_speed.json", {"profile": profile.name, "machine": machine(), "rows": rows})
    write_text(out / "planning_speed.md", _markdown(table, profile))
    _plot(table, profile, out / "planning_speed.png")
    return table


def _markdown(table: pd.DataFrame, profile: Profile) -> str:
    def fmt(v: Any, spec: str) -> str:
        return "—" if v is None or (isinstance(v, float) and v != v) else format(v, spec)

    lines = [f"Planning time per call, one episode at a time (profile `{profile.name}`, CEM {table.cem.iloc[0]}, "
             f"device {table.device.iloc[0]}, random weights)", "",
             "| agent | ours (s/call) | speed-up vs DINO-WM | paper (s/call) | paper speed-up | tokens/frame | "
             "predictor tokens/call | params trainable | params frozen | how measured |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.agent} | {fmt(r.plan_time_s, '.3g')} | {fmt(r.speedup_vs_dinowm, '.1f')}× | "
                     f"{fmt(r.paper_plan_time_s, 'g')} | {fmt(r.paper_speedup, '.0f')}{'×' * (r.paper_speedup > 0)} | "
                     f"{r.tokens_per_frame} | {r.predictor_tokens_per_call:,} | {r.params_trainable:,} | "
                     f"{r.params_frozen:,} | {r.measured} |")
    return "\n".join(lines) + "\n"


def _plot(table: pd.DataFrame, profile: Profile, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    x = range(len(table))
    ax.bar([i - 0.2 for i in x], table.plan_time_s, 0.4, label=f"ours ({table.device.iloc[0]})", color="tab:blue")
    paper = table.paper_plan_time_s.astype(float)
    ax.bar([i + 0.2 for i in x], paper.fillna(0), 0.4, label="paper (NVIDIA L40S)", color="tab:gray", hatch="//")
    for i, r in enumerate(table.itertuples()):
        secs = f"{r.plan_time_s:,.0f}" if r.plan_time_s >= 100 else f"{r.plan_time_s:.3g}"
        note = " (extrapolated)" if r.measured.startswith("extrapolated") else ""
        ratio = "reference" if r.agent == REFERENCE else f"{r.speedup_vs_dinowm:.0f}× vs DINO-WM"
        ax.text(i - 0.2, r.plan_time_s, f"{secs} s{note}\n{ratio}", ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(top=table.plan_time_s.max() * 20)
    ax.set_xticks(list(x), [f"{a}\n{t} tok/frame" for a, t in zip(table.agent, table.tokens_per_frame)])
    ax.set_ylabel("seconds per planning call (log)")
    ax.set_title(f"CEM planning time per call, profile {profile.name}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
