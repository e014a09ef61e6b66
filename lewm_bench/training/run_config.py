"""What a training run is: one typed record, saved with every checkpoint and loaded back as that type.

:class:`RunConfig` holds the agent, env, profile, seed, frameskip, the agent's model config, the
training config, the dataset's identity and action statistics, and the provenance. Evaluation and
analysis take the frameskip and the action statistics from it (never from a profile), and the
suite computes a training job's identity with :func:`train_identity`, the same function
:meth:`RunConfig.identity` uses.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lewm_bench.errors import LewmBenchError
from lewm_bench.identity import content_hash
from lewm_bench.provenance import Provenance
from lewm_bench.registry import config_from_dict, get_agent
from lewm_bench.training.config import TrainConfig


@dataclass(frozen=True)
class DataRecord:
    """The dataset a run was trained on."""

    path: str
    """The dataset file, relative to the run folder when it lies on the same tree (so folders can move)."""
    identity: str
    """The dataset's content identity (:func:`lewm_bench.identity.dataset_identity`); '' for runs made before it."""
    image_size: int
    collector: str
    episodes: int
    action_dim: int
    """Size of one action block (frameskip x env action dim)."""
    action_mean: tuple[float, ...]
    """Per env-action-dimension mean of the training actions (the z-scoring of every action block)."""
    action_std: tuple[float, ...]

    def resolve(self, run_dir: str | os.PathLike[str]) -> Path:
        """The dataset file as seen from ``run_dir`` (the folder the record was saved in)."""
        path = Path(self.path)
        return path if path.is_absolute() else Path(run_dir) / path


def train_identity(agent: str, env: str, profile: str, seed: int | None, frameskip: int, model: Any, train: TrainConfig,
                   data_identity: str, world_size: int = 1) -> str:
    """The identity of a training run: everything that decides its weights (not paths, not provenance); with ``seed``
    None, the identity of its setting, which every seed shares."""
    return content_hash({"agent": agent, "env": env, "profile": profile, "seed": seed, "frameskip": frameskip,
                         "model": dataclasses.asdict(model), "train": dataclasses.asdict(train),
                         "data": data_identity, "world_size": world_size})


@dataclass(frozen=True)
class RunConfig:
    """The full resolved configuration of one training run."""

    agent: str
    env: str
    profile: str
    seed: int
    frameskip: int
    """Env steps per action block; evaluation and analysis use this one."""
    model: Any
    """The agent's ``config_class`` instance."""
    train: TrainConfig
    data: DataRecord
    world_size: int = 1
    provenance: Provenance | None = None

    def identity(self) -> str:
        return train_identity(self.agent, self.env, self.profile, self.seed, self.frameskip, self.model, self.train,
                              self.data.identity, self.world_size)

    def setting_identity(self) -> str:
        """:meth:`identity` less the seed: the runs of one setting with different seeds share it (an evaluation's
        ``config_id`` names it, so that the report pools their evaluations as seeds of one row)."""
        return train_identity(self.agent, self.env, self.profile, None, self.frameskip, self.model, self.train,
                              self.data.identity, self.world_size)

    def differences(self, other: RunConfig) -> list[str]:
        """Names of the top-level fields (and ``data.identity``) that change the result between the two."""
        out = [f for f in ("agent", "env", "profile", "seed", "frameskip", "model", "train", "world_size")
               if getattr(self, f) != getattr(other, f)]
        return out + (["data"] if self.data.identity != other.data.identity else [])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``config.json`` and the checkpoint's ``config``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Rebuild from :meth:`to_dict`'s form, also from runs saved before this record existed."""
        try:
            info = get_agent(d["agent"])
            model = config_from_dict(info.cls.config_class, d["model"] if "model" in d else d["lewm"])
            data = dict(d["data"])
            data.setdefault("identity", "")
            data["action_mean"] = tuple(data["action_mean"])
            data["action_std"] = tuple(data["action_std"])
            prov = d.get("provenance")
            return cls(d["agent"], d["env"], d["profile"], int(d["seed"]), int(d["frameskip"]), model,
                       config_from_dict(TrainConfig, d["train"]),
                       DataRecord(**{f.name: data[f.name] for f in dataclasses.fields(DataRecord)}),
                       int(d.get("world_size", 1)), Provenance(**prov) if prov else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise LewmBenchError(f"not a lewm-bench run configuration ({type(exc).__name__}: {exc}); was it written "
                                 "by another tool or a much older lewm-bench?") from None

    def check_frameskip(self, frameskip: int, source: str) -> None:
        """Refuse to use this run with another frameskip (it would change the action blocks silently)."""
        if frameskip != self.frameskip:
            raise LewmBenchError(f"{source} was trained with frameskip {self.frameskip} but {frameskip} was asked "
                                 f"for; action blocks would not match: use frameskip {self.frameskip} (profile "
                                 f"{self.profile!r})")

    def action_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the env actions the model's action blocks were z-scored with."""
        return np.asarray(self.data.action_mean, np.float64), np.asarray(self.data.action_std, np.float64)
