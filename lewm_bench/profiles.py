"""Named size presets: ``paper`` (the paper's sizes, for a GPU), ``cpu`` (default without a GPU),
``smoke`` (seconds, for tests). The same code runs all three; only these numbers differ.

A profile holds what every agent shares: training and protocol sizes (epochs, CEM budget,
evaluation episodes, analysis sizes). Per-env data sizes come from each environment's
:class:`~lewm_bench.envs.spec.EnvSpec` and each agent's architecture from its own ``presets``
(see :mod:`lewm_bench.registry`); this module imports neither an env class nor a model.

Without ``--profile`` the command line uses ``paper`` when CUDA is available and ``cpu`` otherwise,
prints which and records it with every result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lewm_bench.analysis.config import DiagnosticsConfig, ProbeConfig, VoEConfig
from lewm_bench.envs.spec import PROFILE_NAMES, DataSizes, env_spec
from lewm_bench.errors import LewmBenchError
from lewm_bench.planning.cem import CEMConfig
from lewm_bench.training.config import TrainConfig

ProfileName = Literal["paper", "cpu", "smoke"]


@dataclass(frozen=True)
class Profile:
    """Sizes every agent and env share at one scale."""

    name: ProfileName
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation settings (an agent may give its own recipe in ``train_presets``)."""
    frameskip: int = 5
    """Env steps per action block (paper: 5)."""
    cem: CEMConfig = field(default_factory=CEMConfig)
    """Planner settings (paper: 300 candidates x 30 iterations, top 30, horizon 5)."""
    eval_episodes: int = 50
    """Evaluation episodes (the paper's 50)."""
    timing_calls: int = 20
    """Planning calls (or policy decisions) timed one episode at a time, after ``warmup_calls`` untimed ones."""
    warmup_calls: int = 3
    gif_episodes: int = 4
    """Episodes drawn into ``episodes.gif`` (observation beside goal). Their every frame is rendered, where the other
    episodes render only the frames the agent looks at."""
    voe: VoEConfig = field(default_factory=VoEConfig)
    """Violation-of-expectation sizes (trajectories, frames, perturbation step)."""
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    """Probing sizes (frames, ridge, MLP steps)."""
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    """Model-diagnostics sizes (held-out clips, evaluation tasks)."""

    def data_for(self, env: str) -> DataSizes:
        """The data sizes of ``env`` at this profile (from the env's spec)."""
        return env_spec(env).data_for(self.name)


PROFILES: dict[str, Profile] = {
    "paper": Profile("paper"),
    # 7 epochs and 8 CEM iterations (from 10 and 10) bring the whole cpu suite under 2 hours on 2 cores
    # (README: Results).
    # bf16 where the CPU has fast bf16 kernels (AVX-512 / AMX), fp32 on others (where bf16 is an order slower)
    "cpu": Profile("cpu", train=TrainConfig(epochs=7, steps_per_epoch=200, batch_size=128, lr=1e-3, bf16="auto"),
                   cem=CEMConfig(iterations=8)),
    "smoke": Profile("smoke", train=TrainConfig(epochs=2, steps_per_epoch=4, batch_size=16, lr=1e-3, eval_clips=32),
                     cem=CEMConfig(candidates=16, iterations=2, elites=4, horizon=2), eval_episodes=4,
                     timing_calls=3, warmup_calls=1, gif_episodes=1,
                     voe=VoEConfig(trajectories=8, frames=5, perturb_frame=3),
                     probe=ProbeConfig(train_frames=120, test_frames=40, mlp_steps=20),
                     diagnostics=DiagnosticsConfig(clips=8, tasks=2, batch=4)),
}
assert tuple(PROFILES) == PROFILE_NAMES


def default_profile_name() -> ProfileName:
    """``paper`` on a CUDA machine, ``cpu`` otherwise."""
    import torch

    return "paper" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None) -> Profile:
    """The named profile (the machine's default for ``None``); the error lists the valid names."""
    name = default_profile_name() if name is None else name
    if name not in PROFILES:
        raise LewmBenchError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
