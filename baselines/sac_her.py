"""SAC + HER: the reward-based, state-based RL reference row (stable-baselines3), labelled as such.

Every other agent learns from the reward-free offline pixels. This one is the task-specific family
the paper contrasts them with: SB3's SAC with hindsight experience replay, trained **online** on the
env's goal view (:mod:`lewm_bench.envs.goal_view`: the privileged physical state as observation, a
full goal state as desired goal, the env's own success test as a sparse reward, 0 on success and -1
otherwise, 50-step episodes as the protocol's budget). It is evaluated by the same harness on the
same held-out start/goal pairs, one env action per decision, with the pair's goal *state* (not its
image); its results record that it used the state, the reward and how many env steps.

Budgets (env steps, ``SacHerConfig.env_steps``): Two-Room learns in a few thousand (measured for the
issue: 94% on the 50 held-out pairs after 5k steps, 96% after 10k, about 90 CPU-seconds per 5k on
2 cores), so it is in the default grid there; PushT and Cube need on the order of a million steps
(hours on a CPU): they are opt-in (``lewm-bench run --agents sac-her --envs pusht``) and resumable.

Training (:meth:`SacHer.learn`) saves SB3's model and replay buffer at episode boundaries every
``checkpoint_every`` steps into ``RUN/online/step-N/`` (``state.json`` is written last and marks it
complete), so ``lewm-bench train --resume`` continues a killed run from its last checkpoint (SB3's
own random streams restart there, so a resumed run is not bit-identical to an uninterrupted one).
SB3's logger writes ``progress.csv`` (and TensorBoard files when ``tensorboard`` is installed) into
the run folder. Hyperparameters are SB3's SAC defaults (Adam 3e-4, batch 256, discount 0.99, tau
0.005, automatic entropy) with HER's ``future`` strategy and 4 relabelled goals per transition, as in
SB3's HER examples; ``learning_starts`` as in ``examples/sac_her_two_room.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lewm_bench.data.actions import ActionCodec
from lewm_bench.errors import LewmBenchError
from lewm_bench.io import write_json
from lewm_bench.registry import register_agent

ONLINE_DIR = "online"
"""Subfolder of the run folder that holds SB3's checkpoints (model, replay buffer) during training."""


@dataclass(frozen=True)
class SacHerConfig:
    """SAC + HER's budget and hyperparameters (SB3's names; defaults: SB3's SAC and HER examples)."""

    env_steps: tuple[tuple[str, int], ...] = (("*", 1_000_000),)
    """Online env steps per env name (``*``: every other env)."""
    net_arch: tuple[int, ...] = (256, 256)
    learning_rate: float = 3e-4
    batch_size: int = 256
    buffer_size: int = 1_000_000
    """At most this many transitions (and never more than the run's env steps)."""
    learning_starts: int = 500
    gamma: float = 0.99
    tau: float = 0.005
    n_sampled_goal: int = 4
    goal_selection_strategy: str = "future"
    episode_steps: int = 50
    """Episode length of the goal view during training (the protocol's budget)."""
    checkpoint_every: int = 10_000
    """Env steps between checkpoints (taken at the next episode end)."""

    def __post_init__(self) -> None:
        steps = dict(self.env_steps)
        if "*" not in steps or any(int(v) < 1 for v in steps.values()):
            raise ValueError(f"env_steps needs a '*' entry and positive budgets; got {self.env_steps}")
        if min(self.net_arch, default=0) < 1 or self.batch_size < 1 or self.episode_steps < 1 \
                or self.checkpoint_every < 1 or self.learning_starts < 0:
            raise ValueError(f"SacHerConfig sizes must be positive; got {self}")

    def steps_for(self, env: str) -> int:
        """The online env-step budget for ``env``."""
        steps = dict(self.env_steps)
        return int(steps.get(env, steps["*"]))


PRESETS: MappingProxyType[str, SacHerConfig] = MappingProxyType({
    "paper": SacHerConfig(),
    # cpu: Two-Room in minutes; the other envs keep a budget that can learn (opt-in, hours)
    "cpu": SacHerConfig(env_steps=(("*", 1_000_000), ("two-room", 10_000), ("reacher", 100_000))),
    "smoke": SacHerConfig(env_steps=(("*", 200),), net_arch=(32, 32), batch_size=32, learning_starts=100,
                          checkpoint_every=100),
})


@register_agent("sac-her")
class SacHer(nn.Module):
    """SB3 SAC + HER on the privileged state with the env's sparse success reward, trained online."""

    kind = "policy"
    observes = "state"
    """The harness gives ``act`` the physical state and the goal state, not images."""
    uses_rewards = True
    display_name, colour, in_grid, order = "SAC+HER (state, reward)", "C9", True, 900
    grid_envs: tuple[str, ...] = ("two-room",)
    """In the default grid only where its budget takes minutes on a CPU (module docstring)."""
    config_class = SacHerConfig
    presets = PRESETS

    def __init__(self, config: SacHerConfig, image_size: int, action_dim: int, env: str) -> None:
        super().__init__()
        from gymnasium import spaces
        from stable_baselines3.sac.policies import MultiInputPolicy

        from lewm_bench.envs import env_spec
        from lewm_bench.envs.goal_view import OBS_KEYS

        spec = env_spec(env)
        self.config, self.env = config, env
        box = spaces.Box(-np.inf, np.inf, (spec.state_dim,), np.float32)
        self.observation_space = spaces.Dict({k: box for k in OBS_KEYS})
        self.action_space = spaces.Box(-1.0, 1.0, (spec.action_dim,), np.float32)
        self.policy = MultiInputPolicy(self.observation_space, self.action_space, lambda _: config.learning_rate,
                                       net_arch=list(config.net_arch))
        self.policy.set_training_mode(False)
        self.register_buffer("online_env_steps", torch.zeros((), dtype=torch.long))

    def set_action_codec(self, codec: ActionCodec) -> None:
        """Unused: SAC acts in the env's own action space, one action per decision."""

    @torch.no_grad()
    def act(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """Physical state and goal state -> (1, env action dim): one env action (the actor's mean)."""
        from lewm_bench.collect.sb3 import sb3_observation

        action, _ = self.policy.predict(sb3_observation("goal", state, goal_state), deterministic=True)
        return np.asarray(action, np.float32).reshape(1, -1)

    def learn(self, env_kwargs: dict[str, Any], seed: int, run_dir: Path, resume: bool, progress: bool = True) -> float:
        """Train online for the env's budget (resuming from ``run_dir/online``); returns the training seconds
        (all sessions)."""
        from stable_baselines3 import SAC, HerReplayBuffer
        from stable_baselines3.common.logger import configure

        from lewm_bench.envs.goal_view import make_goal_env

        cfg, total = self.config, self.config.steps_for(self.env)
        view = make_goal_env(self.env, max_episode_steps=cfg.episode_steps, **env_kwargs)
        saved = _latest_checkpoint(run_dir / ONLINE_DIR)
        if saved is not None and not resume:
            raise LewmBenchError(f"{run_dir} holds an unfinished run; pass --resume to continue it or --force to "
                                 "start over")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # MLPs of 256 units: more threads only add overhead
        try:
            if saved is not None:
                sac = SAC.load(saved / "model.zip", env=view, device="cpu")
                sac.load_replay_buffer(saved / "replay_buffer.pkl")
                elapsed = float(json.loads((saved / "state.json").read_text())["train_time_s"])
            else:
                sac = SAC("MultiInputPolicy", view, learning_rate=cfg.learning_rate,
                          buffer_size=min(cfg.buffer_size, total), learning_starts=cfg.learning_starts,
                          batch_size=cfg.batch_size, tau=cfg.tau, gamma=cfg.gamma,
                          replay_buffer_class=HerReplayBuffer,
                          replay_buffer_kwargs={"n_sampled_goal": cfg.n_sampled_goal,
                                                "goal_selection_strategy": cfg.goal_selection_strategy},
                          policy_kwargs={"net_arch": list(cfg.net_arch)}, seed=seed, device="cpu")
                elapsed = 0.0
            _keep_previous_log(run_dir)
            sac.set_logger(configure(str(run_dir), ["csv", *(["tensorboard"] if _has_tensorboard() else [])]))
            bar = tqdm(total=total, initial=sac.num_timesteps, desc=f"SAC+HER {self.env}", unit="step",
                       disable=not progress, leave=False)
            saver = _checkpoints(run_dir / ONLINE_DIR, cfg.checkpoint_every, bar, elapsed)
            with bar:
                sac.learn(total - sac.num_timesteps, callback=saver, reset_num_timesteps=False, log_interval=4)
            elapsed = saver.elapsed()
        finally:
            torch.set_num_threads(threads)
            view.close()
        self.policy.load_state_dict(sac.policy.state_dict())
        self.online_env_steps.fill_(int(sac.num_timesteps))
        return elapsed


def _latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint folder (one with ``state.json``), or None."""
    done = sorted(p.parent for p in folder.glob("step-*/state.json"))
    return done[-1] if done else None


def _keep_previous_log(run_dir: Path) -> None:
    """SB3's CSV logger starts ``progress.csv`` afresh: keep an earlier session's as ``progress-K.csv``."""
    log = run_dir / "progress.csv"
    if log.exists():
        k = 1
        while (run_dir / f"progress-{k}.csv").exists():
            k += 1
        log.rename(run_dir / f"progress-{k}.csv")


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _checkpoints(folder: Path, every: int, bar: tqdm, elapsed: float) -> Any:
    """An SB3 callback: the progress bar, and a complete checkpoint (model, replay buffer, then ``state.json``) at
    the first episode end after every ``every`` env steps; older checkpoints go once a newer one is complete.
    Its ``elapsed()`` is the training seconds of every session so far."""
    from stable_baselines3.common.callbacks import BaseCallback  # SB3 is imported only when training

    from lewm_bench.faults import fault_point

    class Checkpoints(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start, self.next = time.perf_counter(), 0

        def elapsed(self) -> float:
            return elapsed + time.perf_counter() - self.start

        def _on_training_start(self) -> None:
            self.next = (self.num_timesteps // every + 1) * every

        def _on_step(self) -> bool:
            bar.update(1)
            if self.num_timesteps >= self.next and bool(self.locals["dones"][0]):
                self._save()
                self.next = (self.num_timesteps // every + 1) * every
            return True

        def _save(self) -> None:
            target = folder / f"step-{self.num_timesteps:010d}"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            self.model.save(target / "model.zip")
            self.model.save_replay_buffer(target / "replay_buffer.pkl")
            write_json(target / "state.json", {"env_steps": int(self.num_timesteps), "train_time_s": self.elapsed()})
            for old in folder.glob("step-*"):
                if old != target:
                    shutil.rmtree(old, ignore_errors=True)
            fault_point("online-checkpoint")

    return Checkpoints()
