"""GCBC: goal-conditioned behaviour cloning (the paper's Fig. 6 baseline; OGBench's ``impls/agents/gcbc.py``).

The actor regresses the data's action block on (observation, goal) features, with goals drawn from
the same episode's future (uniformly, OGBench's ``actor_p_trajgoal=1``): loss = mean squared error.
Everything else (frozen DINO-WM-style features, action blocks, acting) is
:mod:`lewm_bench.baselines.goal_policy`'s.
"""

from __future__ import annotations

from types import MappingProxyType

import torch

from lewm_bench.baselines.dinowm import DinoWM
from lewm_bench.baselines.goal_policy import GoalBatch, GoalPolicy, GoalPolicyConfig, policy_train_presets
from lewm_bench.registry import LossTerms, register_agent

PRESETS: MappingProxyType[str, GoalPolicyConfig] = MappingProxyType({
    # DINO-WM's encoder of each profile; paper: OGBench's (512, 512, 512) actor on 2 x 2 pooled DINOv2-S tokens
    "paper": GoalPolicyConfig(encoder=DinoWM.presets["paper"], patch_pool=7),
    # cpu: the 4 x 4 patch tokens of width 128 unpooled (2,048 features), a smaller actor
    "cpu": GoalPolicyConfig(encoder=DinoWM.presets["cpu"], patch_pool=1, actor_hidden=(256, 256, 256)),
    "smoke": GoalPolicyConfig(encoder=DinoWM.presets["smoke"], patch_pool=2, actor_hidden=(32, 32)),
})


@register_agent("gcbc")
class GCBC(GoalPolicy):
    """Goal-conditioned behaviour cloning on frozen DINO-WM-style features (MSE on action blocks)."""

    config_class = GoalPolicyConfig
    presets = PRESETS
    train_presets = MappingProxyType(policy_train_presets())
    display_name, colour, in_grid, order = "GCBC", "C4", True, 10
    loss_terms = ("actor_loss",)

    def loss(self, batch: GoalBatch, generator: torch.Generator | None = None) -> LossTerms:
        """Mean over the batch of the squared error of the predicted block (mean over its dimensions)."""
        actor_loss = self.bc_error(batch).mean()
        return LossTerms(actor_loss, {"actor_loss": actor_loss}, batch.observations)

    forward = loss
