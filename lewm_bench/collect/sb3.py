"""Collectors driven by stable-baselines3 policies: any saved SB3 model, and a trained SAC expert.

- ``sb3:PATH`` (:class:`SB3Collector`): collects with any saved SB3 model (``.zip`` from
  ``model.save``, any algorithm) in any env, plus Gaussian action noise. The model's observation
  space decides what it is fed: the goal view's ``Dict(observation, achieved_goal, desired_goal)``
  (:mod:`lewm_bench.envs.goal_view`; a goal is drawn per episode from the env's reset distribution
  and redrawn whenever it is reached), the privileged state ``(state_dim,)``, or the pixels
  (``(H, W, 3)`` or SB3's channel-first ``(3, H, W)``).
- ``sac`` (:class:`SACExpert`): the paper's Reacher data recipe. Trains SB3 SAC once on the env's
  goal view with the dense reward (minus the env's distance: for Reacher the largest joint-angle
  error to a random goal configuration), saves it under the experts folder and reuses it from then
  on; collects with it like ``sb3:PATH``.

The model is loaded in each worker and run deterministically; the noise and goals come from the
episode's ``rng``, so an episode's content depends only on the dataset seed, its index and the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lewm_bench.collect.base import CollectorConfig, Policy
from lewm_bench.envs import GoalEnv
from lewm_bench.envs.goal_view import OBS_KEYS, draw_goal_keeping_state
from lewm_bench.errors import LewmBenchError

EXPERTS_ENV_VAR = "LEWM_BENCH_EXPERTS"
"""Environment variable naming the folder of trained experts (default ``~/.cache/lewm-bench/experts``)."""


def experts_dir() -> Path:
    """Where :class:`SACExpert` saves and finds its trained models."""
    return Path(os.environ.get(EXPERTS_ENV_VAR) or Path.home() / ".cache" / "lewm-bench" / "experts")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file (recorded in the dataset, so another model is another dataset)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_sb3_policy(path: str | os.PathLike[str]) -> Any:
    """The policy network of a saved SB3 model (any algorithm), on the CPU, ready for ``predict``."""
    from stable_baselines3.common.save_util import load_from_zip_file

    try:
        data, params, _ = load_from_zip_file(path, device="cpu")
    except (OSError, ValueError, KeyError) as err:
        raise LewmBenchError(f"expected a saved stable-baselines3 model (.zip from model.save) at {path}; "
                             f"could not read it ({err}); give the path of a file saved by model.save(PATH)") from err
    if not data or not params or "policy" not in params:
        raise LewmBenchError(f"{path}: expected a stable-baselines3 model with a policy; got no policy parameters "
                             "(save the whole model with model.save(PATH))")
    kwargs = dict(data.get("policy_kwargs") or {})
    kwargs.pop("device", None)
    policy = data["policy_class"](data["observation_space"], data["action_space"], lambda _: 0.0, **kwargs)
    policy.load_state_dict(params["policy"])
    policy.set_training_mode(False)
    return policy


def input_kind(space: Any, state_dim: int, image_size: int) -> str:
    """``goal``, ``state``, ``pixels`` or ``pixels-chw``: what a policy with observation ``space`` is fed in an env
    of that state size and image size."""
    from gymnasium import spaces

    n = image_size
    if isinstance(space, spaces.Dict) and set(space.spaces) == set(OBS_KEYS) \
            and all(space[k].shape == (state_dim,) for k in OBS_KEYS):
        return "goal"
    if isinstance(space, spaces.Box):
        if space.shape == (state_dim,):
            return "state"
        if space.shape == (n, n, 3):
            return "pixels"
        if space.shape == (3, n, n):
            return "pixels-chw"
    raise LewmBenchError(
        f"the SB3 model's observation space {space} does not fit env: expected the goal view's "
        f"Dict(observation, achieved_goal, desired_goal) of shape ({state_dim},), the state ({state_dim},) or "
        f"pixels ({n}, {n}, 3); train the model on lewm_bench.envs.goal_view.make_goal_env(ENV) or use data "
        "at the image size it was trained on")


def sb3_observation(kind: str, state: np.ndarray | None = None, goal: np.ndarray | None = None,
                    frame: np.ndarray | None = None) -> Any:
    """What an SB3 model of input ``kind`` (:func:`input_kind`) is fed: the goal view's dict, the state or the frame."""
    if kind == "goal":
        s = np.asarray(state, np.float32)
        return {"observation": s, "achieved_goal": s, "desired_goal": np.asarray(goal, np.float32)}
    if kind == "state":
        return np.asarray(state, np.float32)
    return np.asarray(frame).transpose(2, 0, 1) if kind == "pixels-chw" else np.asarray(frame)


class _SB3Policy:
    """Runs a saved SB3 model (deterministically) plus Gaussian noise; draws goals for goal-view models."""

    def __init__(self, path: Path, noise_std: float, prepare: Any = None) -> None:
        self.path = path
        self.noise_std = noise_std
        self._prepare = prepare
        self._policy: Any = None
        self._kind = ""
        self._goal: np.ndarray | None = None

    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None:
        if self._policy is None:
            if self._prepare is not None:
                self._prepare()  # train the expert here if the collecting process did not
            import multiprocessing

            import torch

            if multiprocessing.parent_process() is not None:  # a collection worker (one per core): one thread each;
                torch.set_num_threads(1)  # collecting in the calling process (--workers 1) leaves its threads alone
            self._policy = load_sb3_policy(self.path)
            self._kind = input_kind(self._policy.observation_space, env.state_dim, env.image_size)
            if self._policy.action_space.shape != (env.action_dim,):
                raise LewmBenchError(f"the SB3 model at {self.path} acts in {self._policy.action_space}; env "
                                     f"{type(env).__name__} expects actions of shape ({env.action_dim},)")
        self._goal = draw_goal_keeping_state(env, rng) if self._kind == "goal" else None

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray:
        state = env.get_state()
        if self._kind == "goal":
            assert self._goal is not None
            if env.is_success(state, self._goal):
                self._goal = draw_goal_keeping_state(env, rng)
                state = env.get_state()
        frame = env._render() if self._kind.startswith("pixels") else None
        action, _ = self._policy.predict(sb3_observation(self._kind, state, self._goal, frame), deterministic=True)
        action = np.asarray(action, np.float64).reshape(env.action_dim)
        if self.noise_std > 0:
            action = action + rng.normal(0.0, self.noise_std, env.action_dim)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------ sb3:PATH
@dataclass(frozen=True)
class SB3Collector(CollectorConfig):
    """Any saved SB3 model (``--collector sb3:PATH``) plus Gaussian action noise ``noise_std``.

    ``sha256`` (filled in from the file) makes a different model a different dataset.
    """

    name: ClassVar[str] = "sb3"
    envs: ClassVar[tuple[str, ...] | None] = None
    path: str = ""
    noise_std: float = 0.0
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.path or not Path(self.path).is_file():
            raise LewmBenchError(f"--collector sb3:PATH expects a saved stable-baselines3 model (.zip); got "
                                 f"{self.path!r}, which is not a file (save one with model.save('model.zip'))")
        if self.noise_std < 0:
            raise LewmBenchError(f"sb3 collector noise_std must be >= 0; got {self.noise_std}")
        if not self.sha256:
            object.__setattr__(self, "sha256", file_sha256(self.path))

    def policy(self) -> Policy:
        return _SB3Policy(Path(self.path), self.noise_std)


# ---------------------------------------------------------------------------------- sac
@dataclass(frozen=True)
class SACExpert(CollectorConfig):
    """SB3 SAC trained on the env's goal view with the dense reward, then run with Gaussian noise.

    Trained once per parameter set (``train_steps``, ``episode_steps``, ``net_width``, ``train_seed``)
    by the collecting process (:meth:`prepare`) and saved as ``EXPERTS/ENV-sac-<hash>.zip`` with a
    ``.json`` record (training seconds, evaluation return and success); later collections reuse it.
    Set ``LEWM_BENCH_EXPERTS`` to choose the folder, or drop your own model there under that name.
    """

    name: ClassVar[str] = "sac"
    envs: ClassVar[tuple[str, ...] | None] = None
    env: str = "reacher"
    train_steps: int = 50_000
    episode_steps: int = 100
    net_width: int = 256
    train_seed: int = 0
    noise_std: float = 0.2

    def __post_init__(self) -> None:
        if self.train_steps < 2 or self.episode_steps < 1 or self.net_width < 1 or self.noise_std < 0:
            raise LewmBenchError(f"sac collector needs train_steps >= 2, episode_steps >= 1, net_width >= 1 and "
                                 f"noise_std >= 0; got {self}")

    def for_env(self, env: str) -> SACExpert:
        """This config for ``env`` (the collector is told its env by :func:`make_collector`)."""
        from dataclasses import replace

        return replace(self, env=env)

    def model_path(self) -> Path:
        """Where the trained expert lives (a function of the training parameters only)."""
        key = json.dumps([self.env, self.train_steps, self.episode_steps, self.net_width, self.train_seed])
        return experts_dir() / f"{self.env}-sac-{hashlib.sha256(key.encode()).hexdigest()[:12]}.zip"

    def prepare(self) -> None:
        """Train and save the expert unless it is already saved."""
        if not self.model_path().is_file():
            train_sac_expert(self)

    def provenance(self) -> dict[str, Any]:
        """The expert that collects: its file name and SHA-256 (a retrained or replaced expert is another one)."""
        path = self.model_path()
        return {"expert": path.name, "expert_sha256": file_sha256(path)} if path.is_file() else {}

    def policy(self) -> Policy:
        return _SB3Policy(self.model_path(), self.noise_std, prepare=self.prepare)


def train_sac_expert(cfg: SACExpert, eval_episodes: int = 20, progress: bool = False) -> dict[str, Any]:
    """Train SAC on ``cfg.env``'s goal view (dense reward), save it at ``cfg.model_path()``; return its record."""
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import Logger

    from lewm_bench.envs.goal_view import make_goal_env

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLPs: extra threads only contend on a shared CPU
    try:
        env = make_goal_env(cfg.env, image_size=16, reward="dense", max_episode_steps=cfg.episode_steps)
        model = SAC("MultiInputPolicy", env, learning_starts=min(1_000, cfg.train_steps // 2), seed=cfg.train_seed,
                    policy_kwargs={"net_arch": [cfg.net_width, cfg.net_width]}, device="cpu", verbose=0)
        model.set_logger(Logger(None, []))  # SB3's default logger would leave an empty SB3-<time> folder in /tmp
        start = time.perf_counter()
        model.learn(cfg.train_steps, progress_bar=progress)
        seconds = time.perf_counter() - start
        returns, successes = [], []
        for i in range(eval_episodes):
            obs, _ = env.reset(seed=10_000 + i)
            total, done, info = 0.0, False, {"is_success": False}
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            successes.append(bool(info["is_success"]))
        path = cfg.model_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        model.save(tmp)
        record = {"env": cfg.env, "train_steps": cfg.train_steps, "episode_steps": cfg.episode_steps,
                  "net_width": cfg.net_width, "train_seed": cfg.train_seed, "train_seconds": round(seconds, 1),
                  "eval_episodes": eval_episodes, "eval_mean_return": float(np.mean(returns)),
                  "eval_success_at_end": float(np.mean(successes))}
        path.with_suffix(".json").write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)
        return record
    finally:
        torch.set_num_threads(threads)
