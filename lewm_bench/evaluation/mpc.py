"""Model-predictive control over a batch of evaluation episodes (SPEC §2, §6).

Every episode starts from its task's stored state with its goal; all active episodes are planned
in one batched call, then each executes ``receding_horizon`` planned blocks (``frameskip`` env
steps each) before the next call, until it succeeds or the budget runs out. Success is checked
after every env step. A policy agent (``random``) acts without planning, one instance per episode:
whenever its previous actions are used up it is asked for more (``random`` returns 25 steps, five
blocks, per call). Every episode's randomness (planner noise, policy) is seeded from its task
(:func:`episode_seed`), so how the episodes are grouped into batches changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lewm_bench.data.actions import ActionCodec
from lewm_bench.envs import GoalEnv
from lewm_bench.evaluation.protocol import Protocol, Task
from lewm_bench.planning.base import Planner
from lewm_bench.protocols import WorldModel, uses_proprio


@dataclass
class EpisodeRecord:
    episode: int
    start: int
    goal: int
    success: bool = False
    steps_to_success: int | None = None
    steps: int = 0
    solves: int = 0
    final_distance: float = float("nan")
    error: str | None = None
    """Set when the episode crashed; it then counts as a failure and the others go on."""
    frames: list[np.ndarray] = field(default_factory=list, repr=False)


def episode_seed(seed: int, task: Task) -> int:
    """The seed of ``task``'s randomness in an evaluation with ``seed`` (independent of its batch)."""
    return seed * 1_000_003 + task.episode * 1_009 + task.start * 7


def run_mpc(envs: list[GoalEnv], tasks: list[Task], protocol: Protocol, model: WorldModel | None,
            planner: Planner | None, codec: ActionCodec, context: int, receding_horizon: int,
            device: torch.device, policies: list[Any] | None = None, seed: int = 0, keep_frames: int = 0,
            plan_times: list[float] | None = None) -> list[EpisodeRecord]:
    """Run one episode per (env, task) pair; all are planned together.

    Args:
        context: frames of context given to the planner (1 as in the reference evaluation, or the
            model's training history). Frames before the episode start repeat the first frame,
            and the unknown action blocks before it are zeros (the data mean).
        receding_horizon: planned blocks executed before replanning.
        policies: one policy agent per env, used when ``model`` is None: ``act(observation, goal)`` on images,
            or ``act(state, goal_state)`` on physical states when its ``observes`` is ``"state"``.
        keep_frames: keep the observed frames of the first ``keep_frames`` episodes (for a video).
        plan_times: when given, the seconds of every planning call (or policy decision) are appended to it.
    """
    if model is None and (policies is None or len(policies) != len(envs)):
        raise ValueError("run_mpc needs a world model with a planner, or one policy per env")
    proprio = uses_proprio(model)  # only such a model is given the physical states
    # Frames are rendered only where they are looked at: where the next decision is made (the end of the executed
    # blocks), every frameskip-th step when the planner's context reaches back, and in the episodes kept for a video.
    # Rendering has no effect on the physics, so the episodes are the same as with every frame rendered.
    pixels = model is not None or any(getattr(p, "observes", "pixels") == "pixels" for p in policies or [])
    context_frames = model is not None and context > 1
    records, goals, history, actions_taken, states = [], [], [], [], []
    for i, (env, task) in enumerate(zip(envs, tasks)):
        obs, _ = env.reset(options={"state": task.start_state, "goal_state": task.goal_state})
        records.append(EpisodeRecord(task.episode, task.start, task.goal))
        goals.append(env.render_state(task.goal_state))
        history.append([obs])
        actions_taken.append([])
        states.append([env.get_state()] if proprio else [])
        if i < keep_frames:
            records[-1].frames.append(obs)
    active = list(range(len(envs)))
    while active:
        if model is None or planner is None:
            plans = {}
            for i in active:  # one decision per episode, each timed
                start = time.perf_counter()
                plans[i] = policy_act(policies[i], envs[i], history[i][-1], goals[i], tasks[i].goal_state)
                if plan_times is not None:
                    plan_times.append(time.perf_counter() - start)
        else:
            ctx, past = zip(*(context_window(history[i], actions_taken[i], context, codec) for i in active))
            ctx_states = None
            if proprio:  # the context frames' states (same frames as context_window's), then the goal's
                ctx_states = torch.from_numpy(np.stack([np.stack(
                    [states[i][j] for j in context_indices(len(history[i]) - 1, context, codec.frameskip)]
                    + [np.asarray(tasks[i].goal_state)]) for i in active]).astype(np.float32)).to(device)
            result = planner.solve(
                model, torch.from_numpy(np.stack(ctx)).to(device), torch.from_numpy(np.stack(past)).to(device),
                torch.from_numpy(np.stack([goals[i] for i in active]).transpose(0, 3, 1, 2)).to(device),
                seeds=[episode_seed(seed, tasks[i]) + records[i].solves for i in active], states=ctx_states)
            if plan_times is not None:
                plan_times.append(result.seconds)
            blocks = result.actions[:, :receding_horizon].float().cpu().numpy()
            plans = {i: codec.to_env(blocks[k]) for k, i in enumerate(active)}
        for i in active:
            rec, env = records[i], envs[i]
            rec.solves += model is not None
            try:
                for j, a in enumerate(plans[i]):
                    if rec.steps >= protocol.budget:
                        break
                    decision_frame = j == len(plans[i]) - 1  # the next plan or decision starts from it
                    context_frame = context_frames and (rec.steps + 1) % codec.frameskip == 0
                    if i < keep_frames or (pixels and (decision_frame or context_frame)):
                        obs, _, _, _, info = env.step(a)
                    else:
                        obs, info = None, env.step_unrendered(a)
                    rec.steps += 1
                    history[i].append(obs)
                    actions_taken[i].append(a)
                    if proprio:
                        states[i].append(env.get_state())
                    if i < keep_frames:
                        rec.frames.append(obs)
                    if info["is_success"]:
                        rec.success, rec.steps_to_success = True, rec.steps
                        break
                rec.final_distance = float(env.distance(env.get_state(), tasks[i].goal_state))
            except Exception as exc:  # one broken episode must not lose the others' records
                rec.error = f"{type(exc).__name__}: {exc}"
        active = [i for i in active if not records[i].success and records[i].error is None
                  and records[i].steps < protocol.budget]
    return records


def policy_act(policy: Any, env: GoalEnv, observation: np.ndarray, goal: np.ndarray,
               goal_state: np.ndarray) -> np.ndarray:
    """One decision of a policy agent: ``act(observation, goal)`` on images, or ``act(state, goal_state)`` on the
    env's physical state when the policy ``observes`` the state (e.g. ``sac-her``)."""
    if getattr(policy, "observes", "pixels") == "state":
        return policy.act(env.get_state(), np.asarray(goal_state))
    return policy.act(observation, goal)


def context_indices(t: int, context: int, frameskip: int) -> list[int]:
    """Indices of the last ``context`` frames up to step ``t``, ``frameskip`` apart (the first repeats before 0)."""
    return [max(t - k * frameskip, 0) for k in range(context - 1, -1, -1)]


def context_window(frames: list[np.ndarray | None], actions: list[np.ndarray], context: int,
                   codec: ActionCodec) -> tuple[np.ndarray, np.ndarray]:
    """The last ``context`` frames ``frameskip`` steps apart (CHW) and the z-scored blocks between them."""
    fs = codec.frameskip
    idx = context_indices(len(frames) - 1, context, fs)
    if any(frames[j] is None for j in idx):
        raise RuntimeError(f"context frames {idx} were not all rendered; run_mpc renders every {fs}th step's frame "
                           "when the context reaches back")
    ctx = np.stack([frames[j] for j in idx]).transpose(0, 3, 1, 2)
    blocks = np.zeros((context - 1, codec.block_dim), np.float32)
    for k in range(context - 1):
        lo = idx[k]
        if idx[k + 1] - lo == fs:
            blocks[k] = codec.to_blocks(np.stack(actions[lo:lo + fs]))[0]
    return ctx, blocks
