"""Any saved stable-baselines3 model as an agent: ``lewm-bench eval --agent sb3 --checkpoint model.zip``.

A user's own RL policy (any SB3 algorithm, saved with ``model.save``) is evaluated by the same harness
on the same held-out start/goal pairs as every other agent, deterministically, one env action per
decision. What it is fed follows its observation space (:func:`lewm_bench.collect.sb3.input_kind`):
the goal view's ``Dict(observation, achieved_goal, desired_goal)`` (the physical state and the task's
goal state; train on :func:`lewm_bench.envs.goal_view.make_goal_env`), the bare state, or the pixels
(``(H, W, 3)`` or channel-first; a pixel model is not told the goal). Results record the file's
SHA-256, and that the agent saw the privileged state when it did.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lewm_bench.errors import LewmBenchError
from lewm_bench.registry import register_agent


@register_agent("sb3")
class SB3Model(nn.Module):
    """A saved stable-baselines3 model (.zip, any algorithm), run deterministically: --checkpoint PATH."""

    kind = "policy"
    display_name, colour, order = "SB3 model", "C8", 950
    uses_rewards = False
    """Unknown for a user's model: results say only what it observed (state or pixels)."""

    def __init__(self, policy: Any, kind: str, path: str, action_dim: int) -> None:
        from lewm_bench.collect.sb3 import file_sha256

        super().__init__()
        self.policy, self.kind_of_input, self.path, self.action_dim = policy, kind, path, action_dim
        self.sha256 = file_sha256(path)
        self.identity = f"sb3 {self.sha256}"
        """What makes two evaluations of this agent the same (the file's content)."""
        self.observes = "pixels" if kind.startswith("pixels") else "state"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], env: str, image_size: int) -> SB3Model:
        """The SB3 model saved at ``path``, checked against ``env``'s state and action sizes and ``image_size``."""
        from lewm_bench.collect.sb3 import input_kind, load_sb3_policy
        from lewm_bench.envs import env_spec

        spec = env_spec(env)
        if not Path(path).is_file():
            raise LewmBenchError(f"agent 'sb3' expects --checkpoint PATH of a saved stable-baselines3 model (.zip); "
                                 f"{path} is not a file")
        policy = load_sb3_policy(path)
        kind = input_kind(policy.observation_space, spec.state_dim, image_size)
        if policy.action_space.shape != (spec.action_dim,):
            raise LewmBenchError(f"the SB3 model at {path} acts in {policy.action_space}; env {env!r} expects "
                                 f"actions of shape ({spec.action_dim},)")
        return cls(policy, kind, str(path), spec.action_dim)

    def set_action_codec(self, codec: Any) -> None:
        """Unused: the model acts in the env's own action space."""

    @torch.no_grad()
    def act(self, observation: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """(state, goal state) or (image, goal image), as ``observes`` says -> (1, env action dim)."""
        from lewm_bench.collect.sb3 import sb3_observation

        if self.observes == "state":
            obs = sb3_observation(self.kind_of_input, state=observation, goal=goal)
        else:
            obs = sb3_observation(self.kind_of_input, frame=observation)
        action, _ = self.policy.predict(obs, deterministic=True)
        return np.clip(np.asarray(action, np.float32).reshape(1, self.action_dim), -1.0, 1.0)
