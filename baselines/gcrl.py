"""GCIVL and GCIQL: goal-conditioned offline RL from reward-free data (the paper's Fig. 6 baselines).

Both learn a goal-conditioned value from hindsight-relabelled goals (reward -1 per decision until
the goal, mask 0 at the goal: :mod:`lewm_bench.training.hindsight`) by expectile regression, and
extract the policy by advantage-weighted regression: actor loss = mean of
``min(exp(alpha * A), 100) * ||pi(s, g) - a||^2`` (the squared error is the mean over the block).

- **GCIVL** (OGBench ``impls/agents/gcivl.py``): two value networks V1, V2 and their Polyak targets;
  ``q = r + discount * mask * min(V1', V2')(s', g)`` with the targets; the expectile weight comes from
  ``q - mean(V1', V2')(s, g)`` (targets) and the squared error from ``q_i - V_i(s, g)``, summed over
  i. Advantage for the actor: ``mean(V)(s', g) - mean(V)(s, g)``. OGBench's alpha 10.
- **GCIQL** (OGBench ``impls/agents/gciql.py``): one V(s, g), two critics Q1, Q2(s, a, g) and their
  Polyak targets. V: expectile regression towards ``min(Q1', Q2')(s, a, g)`` (targets); Q: squared
  error to ``r + discount * mask * V(s', g)`` (V without gradient). Advantage for the actor:
  ``min(Q1, Q2)(s, a, g) - V(s, g)``. OGBench's GCIQL extracts its policy with DDPG+BC by default
  (alpha 0.3); the paper and the issue ask for AWR, for which OGBench uses alpha 3.0 (its only AWR
  setting for GCIQL): that is ours.

Value goals: 20% the current frame, 50% the same episode's future with a geometric offset, 30% random
frames; actor goals: the future, uniformly (OGBench's defaults). Expectile 0.9, discount 0.99 (per
decision here), tau 0.005, LayerNorm in the value networks.
"""

from __future__ import annotations

import copy
from types import MappingProxyType

import torch
from torch import Tensor, nn

from lewm_bench.baselines.dinowm import DinoWM
from lewm_bench.baselines.goal_policy import (
    GoalBatch,
    GoalPolicy,
    ValuePolicyConfig,
    awr_weights,
    expectile_loss,
    mlp,
    policy_train_presets,
)
from lewm_bench.registry import LossTerms, register_agent


def _presets(alpha: float) -> MappingProxyType[str, ValuePolicyConfig]:
    """As GCBC's presets (same encoder, pooling and actor) with value networks of the actor's size."""
    return MappingProxyType({
        "paper": ValuePolicyConfig(encoder=DinoWM.presets["paper"], patch_pool=7, alpha=alpha),
        "cpu": ValuePolicyConfig(encoder=DinoWM.presets["cpu"], patch_pool=1, actor_hidden=(256, 256, 256),
                                 value_hidden=(256, 256, 256), alpha=alpha),
        "smoke": ValuePolicyConfig(encoder=DinoWM.presets["smoke"], patch_pool=2, actor_hidden=(32, 32),
                                   value_hidden=(32, 32), alpha=alpha),
    })


class Ensemble(nn.Module):
    """``n`` independent MLPs on the same input -> (n, B)."""

    def __init__(self, n: int, inputs: int, hidden: tuple[int, ...], layer_norm: bool) -> None:
        super().__init__()
        self.members = nn.ModuleList(mlp(inputs, hidden, 1, layer_norm) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([m(x).squeeze(-1) for m in self.members])


def _polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s, tau)


class _ValuePolicy(GoalPolicy):
    config_class = ValuePolicyConfig
    train_presets = MappingProxyType(policy_train_presets())

    def _target(self, net: nn.Module) -> nn.Module:
        target = copy.deepcopy(net)
        target.requires_grad_(False)
        return target


@register_agent("gcivl")
class GCIVL(_ValuePolicy):
    """Goal-conditioned implicit V-learning: expectile value V(s, g) in hindsight, AWR policy extraction."""

    presets = _presets(alpha=10.0)
    display_name, colour, in_grid, order = "GCIVL", "C6", True, 12
    loss_terms = ("value_loss", "actor_loss", "v_mean", "adv_mean")

    def __init__(self, config: ValuePolicyConfig, image_size: int, action_dim: int) -> None:
        super().__init__(config, image_size, action_dim)
        self.value = Ensemble(2, 2 * self.feature_dim, config.value_hidden, config.value_layer_norm)
        self.target_value = self._target(self.value)

    def value_loss(self, batch: GoalBatch) -> tuple[Tensor, Tensor]:
        """OGBench's IVL loss (module docstring); returns it and the mean value."""
        cfg = self.config
        g = batch.value_goals
        with torch.no_grad():
            next_v = self.target_value(torch.cat([batch.next_observations, g], -1))  # (2, B)
            q = batch.rewards + cfg.discount * batch.masks * next_v.min(0).values
            adv = q - self.target_value(torch.cat([batch.observations, g], -1)).mean(0)
            q_i = batch.rewards + cfg.discount * batch.masks * next_v  # (2, B)
        v = self.value(torch.cat([batch.observations, g], -1))  # (2, B)
        loss = expectile_loss(adv, q_i - v, cfg.expectile).mean(-1).sum()
        return loss, v.mean()

    def advantage(self, batch: GoalBatch) -> Tensor:
        """(B,) ``V(s', g) - V(s, g)`` with the actor's goals (mean of the two value networks), no gradient."""
        with torch.no_grad():
            g = batch.actor_goals
            v = self.value(torch.cat([batch.observations, g], -1)).mean(0)
            nv = self.value(torch.cat([batch.next_observations, g], -1)).mean(0)
        return nv - v

    def loss(self, batch: GoalBatch, generator: torch.Generator | None = None) -> LossTerms:
        value_loss, v_mean = self.value_loss(batch)
        adv = self.advantage(batch)
        actor_loss = (awr_weights(adv, self.config.alpha) * self.bc_error(batch)).mean()
        return LossTerms(value_loss + actor_loss, {"value_loss": value_loss, "actor_loss": actor_loss,
                                                   "v_mean": v_mean.detach(), "adv_mean": adv.mean()},
                         batch.observations)

    forward = loss

    def after_step(self) -> None:
        _polyak(self.target_value, self.value, self.config.tau)


@register_agent("gciql")
class GCIQL(_ValuePolicy):
    """Goal-conditioned IQL: expectile V(s, g), Bellman Q(s, a, g) in hindsight, AWR policy extraction."""

    presets = _presets(alpha=3.0)
    display_name, colour, in_grid, order = "GCIQL", "C5", True, 11
    loss_terms = ("value_loss", "critic_loss", "actor_loss", "v_mean", "adv_mean")

    def __init__(self, config: ValuePolicyConfig, image_size: int, action_dim: int) -> None:
        super().__init__(config, image_size, action_dim)
        self.value = Ensemble(1, 2 * self.feature_dim, config.value_hidden, config.value_layer_norm)
        self.critic = Ensemble(2, 2 * self.feature_dim + action_dim, config.value_hidden, config.value_layer_norm)
        self.target_critic = self._target(self.critic)

    def value_loss(self, batch: GoalBatch) -> tuple[Tensor, Tensor]:
        """Expectile regression of V(s, g) towards min of the target critics."""
        g = batch.value_goals
        with torch.no_grad():
            q = self.target_critic(torch.cat([batch.observations, g, batch.actions], -1)).min(0).values
        v = self.value(torch.cat([batch.observations, g], -1))[0]
        return expectile_loss(q - v, q - v, self.config.expectile).mean(), v.mean()

    def critic_loss(self, batch: GoalBatch) -> Tensor:
        """Both critics' squared error to ``r + discount * mask * V(s', g)`` (summed over the two critics)."""
        g = batch.value_goals
        with torch.no_grad():
            next_v = self.value(torch.cat([batch.next_observations, g], -1))[0]
            target = batch.rewards + self.config.discount * batch.masks * next_v
        q = self.critic(torch.cat([batch.observations, g, batch.actions], -1))  # (2, B)
        return (q - target).pow(2).sum(0).mean()

    def advantage(self, batch: GoalBatch) -> Tensor:
        """(B,) ``min(Q1, Q2)(s, a, g) - V(s, g)`` with the actor's goals, no gradient."""
        with torch.no_grad():
            g = batch.actor_goals
            q = self.critic(torch.cat([batch.observations, g, batch.actions], -1)).min(0).values
            v = self.value(torch.cat([batch.observations, g], -1))[0]
        return q - v

    def loss(self, batch: GoalBatch, generator: torch.Generator | None = None) -> LossTerms:
        value_loss, v_mean = self.value_loss(batch)
        critic_loss = self.critic_loss(batch)
        adv = self.advantage(batch)
        actor_loss = (awr_weights(adv, self.config.alpha) * self.bc_error(batch)).mean()
        return LossTerms(value_loss + critic_loss + actor_loss,
                         {"value_loss": value_loss, "critic_loss": critic_loss, "actor_loss": actor_loss,
                          "v_mean": v_mean.detach(), "adv_mean": adv.mean()}, batch.observations)

    forward = loss

    def after_step(self) -> None:
        _polyak(self.target_critic, self.critic, self.config.tau)

