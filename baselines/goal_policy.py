"""What GCBC, GCIVL and GCIQL share: goal-conditioned policies on frozen DINO-WM-style features.

**Inputs.** The observation and the goal image are encoded by the frozen patch encoder of the
DINO-WM-style agent (:mod:`lewm_bench.baselines.dinowm`), as the paper feeds these baselines DINOv2
patch embeddings. The encoder comes from the agent's ``encoder`` config (a
:class:`~lewm_bench.baselines.dinowm.DinoWMConfig`, by default DINO-WM's own preset of the profile):
with ``encoder_weights`` it loads real DINOv2 weights; otherwise it is pre-trained by DINO-WM's own
``prepare`` (masked-patch autoencoding, same recipe and sizes) with the run's seed on the run's
training frames — cheap (a few CPU minutes at the cpu profile), reproducible (same seed and data,
same encoder) and saved in the checkpoint. It is the same recipe as the DINO-WM run's encoder, not
a bit-identical copy (the frames are drawn from transitions instead of DINO-WM's 4-frame clips).
The patch tokens (P, D) are average-pooled over ``patch_pool`` x ``patch_pool`` neighbourhoods and
flattened into one feature vector per frame (spatial layout kept: where the agent is matters).

**Actions.** A policy predicts one z-scored action *block* (``frameskip`` env actions, the unit the
world models plan in, SPEC §4) from a frame and a goal, and the harness executes the whole block
before asking again. Training pairs are the frames ``frameskip`` steps apart that the world models
see, so policies and planners decide at the same rate on the same data, and the paper's budget of
50 env steps is 10 decisions. Executing single actions instead would need observations at every
step, which the world models never get. Acting is deterministic (the actor's mean, as OGBench's
evaluation at temperature 0).

**Data.** :meth:`GoalPolicy.attach_data` encodes every ``frameskip``-th frame of each training
episode once (from its first frame; one row per decision) into a feature table on the training
device; a transition is a row and the next one of its episode, with the action block between them.
Goals are relabelled in hindsight (:mod:`lewm_bench.training.hindsight`) and one optimiser step
only touches the small MLPs, so training costs seconds per thousand steps on a CPU.

**Networks and losses** follow OGBench (github.com/seohongpark/ogbench, ``impls/agents`` and
``impls/utils/networks.py``): MLPs with GELU, (512, 512, 512) hidden units, Xavier-uniform weights,
zero biases, the actor's last layer scaled by 0.1 (``final_fc_init_scale=1e-2`` on the variance),
LayerNorm after every hidden layer of the value networks. OGBench's actor is a Gaussian with a
constant standard deviation, whose negative log-likelihood is the squared error up to a factor and
a constant: ours is the squared error (mean over the block's dimensions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lewm_bench.baselines.dinov2 import PatchViT, preprocess
from lewm_bench.baselines.dinowm import DinoWM, DinoWMConfig
from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.dataset import open_dataset
from lewm_bench.errors import LewmBenchError
from lewm_bench.metrics import effective_rank, embedding_std, straightness
from lewm_bench.training.config import TrainConfig
from lewm_bench.training.hindsight import OGBENCH_VALUE_GOALS, GoalSampling, relabel

if TYPE_CHECKING:
    from lewm_bench.data.clips import ClipDataset

ENCODE_CHUNK = 512
"""Frames per encoder call when building the feature table."""


@dataclass(frozen=True)
class GoalPolicyConfig:
    """What every goal-conditioned policy here shares. Defaults: OGBench's (module docstring)."""

    encoder: DinoWMConfig = field(default_factory=lambda: DinoWM.presets["paper"])
    """The DINO-WM config whose frozen encoder (and its pre-training or DINOv2 weights) encodes frames."""
    patch_pool: int = 7
    """Average-pool the patch grid by this factor before flattening (paper: 14 x 14 -> 2 x 2 tokens of 384)."""
    actor_hidden: tuple[int, ...] = (512, 512, 512)
    actor_goals: GoalSampling = field(default_factory=GoalSampling)
    """Goals of the actor loss: OGBench's ``actor_p_trajgoal=1``, uniform over the episode's future."""
    discount: float = 0.99
    """Per decision (one action block; OGBench: per env step). Also sets the geometric goal offsets."""

    def __post_init__(self) -> None:
        grid = self.encoder.encoder.grid
        if self.patch_pool < 1 or grid % self.patch_pool:
            raise ValueError(f"patch_pool must divide the encoder's {grid} x {grid} patch grid; got {self.patch_pool}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount must be in (0, 1); got {self.discount}")


@dataclass(frozen=True)
class ValuePolicyConfig(GoalPolicyConfig):
    """GCIVL's and GCIQL's value learning (OGBench's defaults; ``alpha`` is each agent's own)."""

    value_hidden: tuple[int, ...] = (512, 512, 512)
    value_layer_norm: bool = True
    value_goals: GoalSampling = field(default_factory=lambda: OGBENCH_VALUE_GOALS)
    """Goals of the value loss: 20% the current frame, 50% geometric future, 30% random (OGBench)."""
    expectile: float = 0.9
    tau: float = 0.005
    """Target-network update rate (Polyak averaging after every optimiser step)."""
    alpha: float = 10.0
    """AWR temperature: actor weights ``min(exp(alpha * advantage), AWR_MAX_WEIGHT)``."""


AWR_MAX_WEIGHT = 100.0
"""OGBench's cap on the advantage weights."""


def policy_train_presets(paper_steps: int = 500_000) -> dict[str, TrainConfig]:
    """Optimisation shared by the three agents: OGBench's Adam at lr 3e-4, batch 256 (its visual tasks), no weight
    decay and, in effect, no gradient clipping; the trainer's cosine decay stays (OGBench keeps lr constant)."""
    common = dict(lr=3e-4, weight_decay=0.0, warmup_fraction=0.0, grad_clip=1e3, bf16="never")
    return {
        "paper": TrainConfig(epochs=10, steps_per_epoch=paper_steps // 10, batch_size=256, **common),
        "cpu": TrainConfig(epochs=4, steps_per_epoch=500, batch_size=256, eval_clips=512, **common),
        "smoke": TrainConfig(epochs=2, steps_per_epoch=4, batch_size=16, eval_clips=32, **common),
    }


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int, layer_norm: bool = False,
        final_gain: float = 1.0) -> nn.Sequential:
    """OGBench's MLP: Linear -> GELU (-> LayerNorm) per hidden layer, then a linear output layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.GELU()] + ([nn.LayerNorm(width)] if layer_norm else [])
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    for k, m in enumerate(x for x in layers if isinstance(x, nn.Linear)):
        nn.init.xavier_uniform_(m.weight, gain=final_gain if k == len(hidden) else 1.0)
        nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


def expectile_loss(advantage: Tensor, diff: Tensor, expectile: float) -> Tensor:
    """Element-wise ``|expectile - 1(advantage < 0)| * diff**2`` (OGBench: the weight comes from ``advantage``)."""
    weight = torch.where(advantage >= 0, expectile, 1.0 - expectile)
    return weight * diff.pow(2)


def awr_weights(advantage: Tensor, alpha: float) -> Tensor:
    """Advantage-weighted regression weights ``min(exp(alpha * A), 100)``, without gradient."""
    return torch.exp(alpha * advantage.detach()).clamp(max=AWR_MAX_WEIGHT)


class GoalBatch(NamedTuple):
    """One training batch of frozen features (B, F), z-scored action blocks (B, A), rewards and masks (B,)."""

    observations: Tensor
    next_observations: Tensor
    actions: Tensor
    actor_goals: Tensor
    value_goals: Tensor
    rewards: Tensor
    masks: Tensor


@dataclass
class FeatureTable:
    """Frozen features of every ``frameskip``-th frame of the training episodes, and their transitions."""

    features: Tensor
    """(rows, F) on the training device."""
    actions: Tensor
    """(rows, A) z-scored action block from each row to the next (zeros on an episode's last row)."""
    transitions: Tensor
    """(N,) rows that have a next row in their episode (CPU, int64)."""
    final: Tensor
    """(N,) the last row of each transition's episode (CPU, int64)."""


class GoalPolicy(nn.Module):
    """Base of the goal-conditioned policies: frozen encoder, actor MLP, data, acting and metrics."""

    kind = "policy"
    check_collapse = False  # the encoder is frozen
    config_class: type[GoalPolicyConfig] = GoalPolicyConfig
    loss_terms: tuple[str, ...] = ("actor_loss",)

    def __init__(self, config: GoalPolicyConfig, image_size: int, action_dim: int) -> None:
        super().__init__()
        self.config, self.image_size, self.action_dim = config, image_size, action_dim
        self.encoder = PatchViT(config.encoder.encoder)
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        grid = config.encoder.encoder.grid // config.patch_pool
        self.feature_dim = grid * grid * config.encoder.encoder.width
        self.actor = mlp(2 * self.feature_dim, config.actor_hidden, action_dim, final_gain=0.1)
        self.codec: ActionCodec | None = None
        self.data: FeatureTable | None = None

    @property
    def encoder_kind(self) -> str:
        return "dinov2" if self.config.encoder.encoder_weights else "self-pretrained"

    def train(self, mode: bool = True) -> GoalPolicy:
        super().train(mode)
        self.encoder.eval()  # frozen: always in inference mode
        return self

    # ------------------------------------------------------------------ features and acting
    @torch.no_grad()
    def features(self, frames: Tensor) -> Tensor:
        """uint8 frames (N, 3, H, W) -> pooled, flattened frozen patch features (N, F)."""
        enc = self.config.encoder.encoder
        tokens = self.encoder(preprocess(frames, enc.input_size))[:, 1:]  # (N, P, D), CLS dropped
        g = enc.grid
        grid = tokens.transpose(1, 2).reshape(len(frames), -1, g, g)  # (N, D, g, g)
        return F.avg_pool2d(grid, self.config.patch_pool).transpose(1, 3).flatten(1).float()

    def policy(self, observations: Tensor, goals: Tensor) -> Tensor:
        """Features (B, F), (B, F) -> z-scored action blocks (B, A)."""
        return self.actor(torch.cat([observations, goals], -1))

    def set_action_codec(self, codec: ActionCodec) -> None:
        """The run's action statistics and frameskip, to turn predicted blocks into env actions."""
        if codec.block_dim != self.action_dim:
            raise LewmBenchError(f"the action codec gives blocks of {codec.frameskip} x {len(codec.mean)} but the "
                                 f"policy was trained on blocks of {self.action_dim}; use the run's frameskip")
        self.codec = codec

    @torch.no_grad()
    def act(self, observation: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 observation and goal -> (frameskip, env action dim) env actions: one decision."""
        if self.codec is None:
            raise LewmBenchError(f"{type(self).__name__}.act needs the run's action codec: call set_action_codec first")
        device = next(self.actor.parameters()).device
        frames = torch.from_numpy(np.stack([observation, goal]).transpose(0, 3, 1, 2)).to(device)
        z = self.features(frames)
        block = self.policy(z[:1], z[1:]).float().cpu().numpy()  # (1, A)
        return self.codec.to_env(block)

    # ------------------------------------------------------------------ training interface
    def prepare(self, train_set: ClipDataset, device: torch.device, seed: int, progress: bool = True) -> None:
        """The frozen encoder: DINOv2 weights, or DINO-WM's own pre-training with ``seed`` on the training frames.

        Runs on a forked RNG (seeded with ``seed``) so it leaves the caller's random state as it found it.
        """
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            donor = DinoWM(self.config.encoder, self.image_size, self.action_dim).to(device)
            donor.prepare(train_set, device, seed, progress)
        self.encoder.load_state_dict(donor.encoder.state_dict())
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def attach_data(self, train_set: ClipDataset, device: torch.device, progress: bool = True) -> int:
        """Encode the training split's decision frames once (module docstring); returns the number of transitions."""
        fs = train_set.frameskip
        feats, acts, finals, trans = [], [], [], []
        codec = ActionCodec.from_stats(train_set.action_mean, train_set.action_std, fs)
        row = 0
        with open_dataset(train_set.path) as ds:
            episodes = ds.split_episodes("train")
            bar = tqdm(episodes, desc="encoding decision frames", unit="episode", disable=not progress, leave=False)
            pending: list[np.ndarray] = []
            for e in bar:
                start, length = int(ds.episode_start[e]), int(ds.episode_length[e])
                n = (length - 1) // fs + 1  # frames 0, fs, 2 fs, ... of the episode
                pending.append(ds.pixels[start:start + (n - 1) * fs + 1][::fs])
                blocks = np.zeros((n, self.action_dim), np.float32)
                if n > 1:
                    blocks[:-1] = codec.to_blocks(ds.actions[start:start + (n - 1) * fs])
                acts.append(blocks)
                trans.append(np.arange(row, row + n - 1))
                finals.append(np.full(n - 1, row + n - 1))
                row += n
                if sum(len(p) for p in pending) >= ENCODE_CHUNK:
                    feats.append(self._encode_numpy(np.concatenate(pending), device))
                    pending = []
            if pending:
                feats.append(self._encode_numpy(np.concatenate(pending), device))
        transitions = torch.from_numpy(np.concatenate(trans)).long()
        if len(transitions) == 0:
            raise LewmBenchError(f"{train_set.path}: no training episode is longer than frameskip {fs} steps; collect "
                                 "longer episodes")
        self.data = FeatureTable(torch.cat(feats), torch.from_numpy(np.concatenate(acts)).to(device), transitions,
                                 torch.from_numpy(np.concatenate(finals)).long())
        return len(transitions)

    def _encode_numpy(self, frames: np.ndarray, device: torch.device) -> Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
        return torch.cat([self.features(c.to(device)) for c in x.split(ENCODE_CHUNK)])

    def training_batch(self, indices: Tensor, generator: torch.Generator) -> GoalBatch:
        """Transitions ``indices`` (of ``attach_data``'s) with hindsight goals drawn with ``generator`` (CPU)."""
        if self.data is None:
            raise LewmBenchError(f"{type(self).__name__}.training_batch needs attach_data(train_set, device) first")
        d, cfg = self.data, self.config
        rows, final = d.transitions[indices.cpu()], d.final[indices.cpu()]
        actor = relabel(rows, final, len(d.features), cfg.actor_goals, cfg.discount, generator)
        value = relabel(rows, final, len(d.features), self.value_goal_sampling, cfg.discount, generator)
        dev = d.features.device
        return GoalBatch(d.features[rows.to(dev)], d.features[(rows + 1).to(dev)], d.actions[rows.to(dev)],
                         d.features[actor.goals.to(dev)], d.features[value.goals.to(dev)], value.rewards.to(dev),
                         value.masks.to(dev))

    @property
    def value_goal_sampling(self) -> GoalSampling:
        """Goals of the value loss (GCBC has none: its actor goals, unused)."""
        return getattr(self.config, "value_goals", self.config.actor_goals)

    def after_step(self) -> None:
        """After every optimiser step (value agents update their target networks)."""

    def bc_error(self, batch: GoalBatch) -> Tensor:
        """(B,) squared error of the actor's block against the data's (mean over the block's dimensions)."""
        return (self.policy(batch.observations, batch.actor_goals) - batch.actions).pow(2).mean(-1)

    @torch.no_grad()
    def heldout_metrics(self, held: ClipDataset, idx: Tensor, device: torch.device) -> dict[str, float]:
        """On held-out clips (>= 3 frames ``frameskip`` apart): ``val_pred_loss`` = the actor's squared error on the
        first block with the clip's last frame as goal; std, effective rank and straightness of the frozen features."""
        was_training = self.training
        self.eval()
        errors, feats = [], []
        for chunk in idx.split(256):
            clips = [held[int(i)] for i in chunk]
            frames = torch.stack([c.frames for c in clips]).to(device)  # (B, T, 3, H, W)
            actions = torch.stack([c.actions for c in clips]).to(device)  # (B, T - 1, A)
            b, t = frames.shape[:2]
            z = self.features(frames.flatten(0, 1)).view(b, t, -1)
            pred = self.policy(z[:, 0], z[:, -1])
            errors.append((pred - actions[:, 0]).pow(2).mean(-1).cpu())
            feats.append(z.cpu())
        self.train(was_training)
        z = torch.cat(feats)
        std_mean, std_min = embedding_std(z)
        return {"val_pred_loss": float(torch.cat(errors).mean()), "emb_std_mean": std_mean, "emb_std_min": std_min,
                "effective_rank": effective_rank(z), "straightness": straightness(z)}
