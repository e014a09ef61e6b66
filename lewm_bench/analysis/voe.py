"""Violation of expectation (SPEC §7): does the world model's surprise jump at an impossible event?

Held-out trajectories of ``frames`` observations (``frameskip`` steps apart) are replayed in the
simulator from their recorded start state with their recorded actions, three times:

- ``none``: unperturbed;
- ``teleport`` (physical): just before observation ``perturb_frame`` the agent (Two-Room), the
  block (PushT) or the cube (Cube) jumps to a random valid place (:meth:`GoalEnv.teleport`);
  the recorded actions then continue from there;
- ``colour`` (visual): from observation ``perturb_frame`` on, the object the teleport would move is
  rendered in another colour (:meth:`GoalEnv.recolour`, the one of :data:`PALETTE` farthest from its
  own), as in the paper; with ``VoEConfig.colour_change = "frame"`` every frame's RGB channels are
  rotated (R, G, B) -> (B, R, G) instead. Either way the physics does not change.

Surprise at observation t = mean squared error between the model's prediction of the embedding
of t (from the embeddings of the previous ``history`` observations and the action blocks between
them) and the embedding of the observed frame t. At the perturbation step, a paired t-test
compares each perturbed trajectory's surprise with the same trajectory's unperturbed surprise;
the effect size is Cohen's d of the paired differences.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lewm_bench.analysis.config import VoEConfig
from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.dataset import open_dataset
from lewm_bench.envs import make_env
from lewm_bench.io import atomic_path, save_figure

VARIANTS = ("none", "teleport", "colour")
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25))
"""Saturated red, green, blue and yellow: the colour change paints the object in the one farthest from its own."""


@dataclass(frozen=True)
class Trajectory:
    episode: int
    start: int
    frames: dict[str, np.ndarray]
    """Variant -> (frames, H, W, 3) uint8 observations."""
    actions: np.ndarray
    """((frames - 1) * frameskip, A) recorded env actions."""


def rotate_colours(frame: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (B, R, G): the whole-frame visual perturbation."""
    return frame[..., [2, 0, 1]]


def changed_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour of :data:`PALETTE` farthest (Euclidean RGB) from ``rgb``."""
    return max(PALETTE, key=lambda c: float(np.linalg.norm(np.subtract(c, rgb, dtype=np.float64))))


def replay_trajectories(env_name: str, data_path: str | os.PathLike[str], frameskip: int, cfg: VoEConfig,
                        split: str = "held_out", cache_dir: str | os.PathLike[str] | None = None
                        ) -> tuple[list[Trajectory], ActionCodec]:
    """Draw ``cfg.trajectories`` (episode, start) pairs of ``split`` and replay each in the three variants.

    With ``cache_dir`` the replays are kept in ``cache_dir/voe_replays-KEY.npz`` (KEY hashes the dataset's
    content identity and size, ``frameskip``, ``split`` and ``cfg``, never its path), so that every model of
    an env is shown the same frames from one simulation.
    """
    if not 1 <= cfg.perturb_frame < cfg.frames:
        raise ValueError(f"perturb_frame must be in [1, frames); got {cfg.perturb_frame} with frames {cfg.frames}")
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"voe_replays-{_replay_key(data_path, frameskip, cfg, split)}.npz"
    if cache is not None and cache.exists():
        with open_dataset(data_path, env_name) as ds:
            codec = ActionCodec.from_dataset(ds, frameskip)
        with np.load(cache) as z:
            return [Trajectory(int(e), int(s), {v: z[f"frames_{v}"][i] for v in VARIANTS}, z["actions"][i])
                    for i, (e, s) in enumerate(zip(z["episode"], z["start"]))], codec
    span = (cfg.frames - 1) * frameskip
    rng = np.random.default_rng(cfg.seed)
    with open_dataset(data_path, env_name) as ds:
        steps = ds.episode_length - 1  # actions per episode
        episodes = [int(e) for e in ds.split_episodes(split) if steps[e] >= span]
        if not episodes:
            raise ValueError(f"{data_path}: no {split} episode has {span} steps; use fewer frames per trajectory "
                             "(the profile's VoEConfig.frames)")
        # distinct episodes (independent pairs for the t-test) unless the split has fewer than asked for
        enough = len(episodes) >= cfg.trajectories
        records = []
        for e in rng.choice(episodes, cfg.trajectories, replace=not enough):
            start = int(rng.integers(steps[e] - span + 1))
            row = int(ds.episode_start[e]) + start
            records.append((int(e), start, ds.states[row], ds.actions[row:row + span]))
        codec = ActionCodec.from_dataset(ds, frameskip)
        env_kwargs = dict(ds.meta.env_kwargs)
    env = make_env(env_name, **env_kwargs)
    recolour = changed_colour(env.object_colour)
    replayed = ("none", "teleport", "colour") if cfg.colour_change == "object" else ("none", "teleport")
    out = []
    try:
        for k, (episode, start, state, actions) in enumerate(records):
            variants = {}
            for variant in replayed:
                obs, _ = env.reset(options={"state": state})  # also restores the object's colour
                frames = [obs]
                for t in range(1, cfg.frames):
                    if variant == "colour" and t == cfg.perturb_frame:
                        env.recolour(recolour)
                    *between, last = actions[(t - 1) * frameskip:t * frameskip]
                    for a in between:  # only every frameskip-th frame is observed: the others need no image
                        env.step_unrendered(a)
                    obs, *_ = env.step(last)
                    if variant == "teleport" and t == cfg.perturb_frame:
                        jumped = env.teleport(env.get_state(), np.random.default_rng([cfg.seed, k]))
                        obs, _ = env.reset(options={"state": jumped})
                    frames.append(obs)
                variants[variant] = np.stack(frames)
            if cfg.colour_change == "frame":
                colour = variants["none"].copy()
                colour[cfg.perturb_frame:] = rotate_colours(colour[cfg.perturb_frame:])
                variants["colour"] = colour
            out.append(Trajectory(episode, start, variants, actions))
    finally:
        env.close()
    if cache is not None:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, episode=[t.episode for t in out], start=[t.start for t in out],
                     actions=np.stack([t.actions for t in out]),
                     **{f"frames_{v}": np.stack([t.frames[v] for t in out]) for v in VARIANTS})
    return out, codec


def _replay_key(data_path: str | os.PathLike[str], frameskip: int, cfg: VoEConfig, split: str) -> str:
    # the dataset's content identity, not its path: a moved or copied run folder keeps its cache
    with open_dataset(data_path) as ds:
        data = ds.meta.identity
    ident = {"data": data, "size": Path(data_path).stat().st_size, "frameskip": frameskip, "split": split,
             "voe": asdict(cfg)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def surprise(model: Any, frames: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """Surprise (B, T) of observations 1..T-1 (column 0 is NaN): frames (B, T, 3, H, W), blocks (B, T-1, A)."""
    z = model.encode(frames)
    h = model.history
    out = torch.full(z.shape[:2], float("nan"))
    for t in range(1, z.shape[1]):
        lo = max(0, t - h)
        pred = model.predict(z[:, lo:t], blocks[:, lo:t])[:, -1]
        out[:, t] = (pred.float() - z[:, t].float()).pow(2).flatten(1).mean(-1).cpu()
    return out


def violation_of_expectation(model: Any, env_name: str, data_path: str | os.PathLike[str], frameskip: int,
                             cfg: VoEConfig, device: torch.device | str = "cpu",
                             cache_dir: str | os.PathLike[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Surprise of every trajectory, variant and step, and the paired tests at the perturbation step.

    Returns:
        (surprise table: trajectory, episode, start, variant, t, surprise;
         tests: variant, perturbation (with the colour-change mode), n, mean surprise
         perturbed / unperturbed at the step, t statistic, p value, Cohen's d).
    """
    trajectories, codec = replay_trajectories(env_name, data_path, frameskip, cfg, cache_dir=cache_dir)
    blocks = torch.from_numpy(np.stack([codec.to_blocks(tr.actions) for tr in trajectories])).to(device)
    rows, at_step = [], {}
    for variant in VARIANTS:
        frames = torch.from_numpy(np.stack([tr.frames[variant] for tr in trajectories])).permute(0, 1, 4, 2, 3)
        s = torch.cat([surprise(model, frames[i:i + 64].to(device), blocks[i:i + 64])
                       for i in range(0, len(frames), 64)]).numpy()
        at_step[variant] = s[:, cfg.perturb_frame]
        for i, tr in enumerate(trajectories):
            rows += [{"trajectory": i, "episode": tr.episode, "start": tr.start, "variant": variant, "t": t,
                      "surprise": float(s[i, t])} for t in range(1, cfg.frames)]
    from scipy import stats  # here, not at the top: importing scipy.stats costs a second at every start of the CLI

    tests = []
    for variant in VARIANTS[1:]:
        diff = at_step[variant] - at_step["none"]
        res = stats.ttest_rel(at_step[variant], at_step["none"])
        tests.append({"variant": variant, "perturbation": _describe(variant, cfg), "n": len(diff),
                      "step": cfg.perturb_frame,
                      "surprise_perturbed": float(at_step[variant].mean()),
                      "surprise_unperturbed": float(at_step["none"].mean()),
                      "t_statistic": float(res.statistic), "p_value": float(res.pvalue),
                      "cohens_d": float(diff.mean() / diff.std(ddof=1)) if diff.std(ddof=1) > 0 else float("nan")})
    return pd.DataFrame(rows), pd.DataFrame(tests)


def _describe(variant: str, cfg: VoEConfig) -> str:
    return {"teleport": "teleport", "colour": f"colour ({cfg.colour_change})"}.get(variant, variant)


def plot_surprise(table: pd.DataFrame, tests: pd.DataFrame, title: str, path: Path) -> None:
    """Mean surprise over time per variant with a 95% band; the perturbation step marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    step = int(tests.step.iloc[0])
    for variant, colour in zip(VARIANTS, ("0.3", "tab:red", "tab:blue")):
        g = table[table.variant == variant].groupby("t").surprise
        mean, sem = g.mean(), g.sem()
        label = variant
        if variant != "none":
            r = tests.set_index("variant").loc[variant]
            label = f"{r.perturbation} (p = {r.p_value:.2g}, d = {r.cohens_d:.2f})"
        ax.plot(mean.index, mean.values, marker="o", color=colour, label=label)
        ax.fill_between(mean.index, mean - 1.96 * sem, mean + 1.96 * sem, color=colour, alpha=0.2)
    ax.axvline(step, color="k", linestyle="--", linewidth=1)
    ax.text(step, ax.get_ylim()[1], " perturbation", va="top", fontsize=8)
    ax.set_xlabel("observation (frameskip steps apart)")
    ax.set_ylabel("surprise (prediction MSE)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
