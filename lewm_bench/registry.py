"""The agent registry: every agent the suite can train and evaluate, built-in or from a plugin.

Every agent, built-in or not, comes in through the entry-point group ``lewm_bench.agents``::

    [project.entry-points."lewm_bench.agents"]
    my-wm = "my_package.agent:MyWorldModel"

or is registered in the running process with the decorator (or a plain call)::

    from lewm_bench.registry import register_agent

    @register_agent("my-wm")
    class MyWorldModel(torch.nn.Module):
        ...

The built-in agents (``lewm``, ``pldm``, ``dinowm``, ``dinowm-proprio``, ``gcbc``, ``gciql``, ``gcivl``,
``sac-her``, ``sb3``, ``oracle``, ``random``) are entry points of lewm-bench's own ``pyproject.toml``; the core never
names them. Registration checks the class against its kind's contract and names what is missing.

**World models** (``kind = "world_model"``) are ``torch.nn.Module`` classes with

- ``config_class``: a frozen dataclass of the architecture and loss (with a ``history`` field: the
  frames of context the model is trained with), and ``presets``: a mapping from profile name
  (``paper``, ``cpu``, ``smoke``) to an instance of it;
- ``__init__(config, image_size, action_dim)`` (``action_dim`` = one action block, frameskip x env dims);
- ``loss(frames, actions, generator) -> LossTerms`` on clips of ``history + 1`` frames, and
  ``loss_terms``: the names of the terms it reports (logged one column each, ``pred_loss`` first);
- ``encode(frames)``, ``predict(embeddings, actions)`` and ``rollout(history, actions)`` — see
  :class:`lewm_bench.protocols.WorldModel`; ``history``, ``tokens_per_frame``, ``encoder_tokens_per_frame``.

Optional: ``train_presets`` (profile name -> :class:`~lewm_bench.training.config.TrainConfig`, the
agent's own optimisation recipe; default: the profile's), ``planning_cost(predicted, goal)``
(default: squared L2 of the final embedding), ``prepare(train_set, device, seed, progress)``
(called once before training starts, e.g. to pre-train a frozen encoder), ``encoder_kind``
(recorded in results), ``check_collapse = False`` (for frozen encoders, which cannot collapse),
``uses_proprio = True`` (the model also sees the proprioceptive state: it is built with
``proprio=`` the env's proprio state indices (:attr:`~lewm_bench.envs.spec.EnvSpec.proprio`) and
given the clips' and episodes' physical states as ``states=`` in ``loss`` and ``encode``; every other
agent never receives them).

**Policies** (``kind = "policy"``) act without a world model or a planner: ``act(observation, goal) ->
(k, action_dim)`` env actions to execute before the next call (the harness times every call as one
*decision*). A policy is either

- untrained (e.g. ``random``): ``__init__(action_dim, seed)``, one instance per episode; or
- **a planner over the simulator** (``plans_in_simulator = True``; e.g. ``oracle``): untrained, built per
  episode with ``__init__(env, env_kwargs, codec, cem, receding_horizon, seed)`` (the env's name and
  constructor arguments, the evaluation's action codec, CEM settings and receding horizon); or
- **trainable** (it defines ``loss``; e.g. ``gcbc``): trained by ``lewm-bench train`` like a world model,
  into the same run folder (config.json, log.csv, checkpoint.pt, summary.json) and resumable. It has
  ``config_class``/``presets`` (its config needs no ``history`` field), ``loss_terms``, optional
  ``train_presets``, ``__init__(config, image_size, action_dim)`` (``action_dim`` = one action block) and:

  - ``prepare(train_set, device, seed, progress)``: once, before the first step (e.g. a frozen encoder);
  - ``attach_data(train_set, device, progress)``: at every start and resume, before training: build what
    ``training_batch`` draws from; returns the number of training samples (an epoch's worth);
  - ``training_batch(indices, generator) -> batch`` and ``loss(batch, generator) -> LossTerms``;
  - ``after_step()``: after every optimiser step (e.g. target-network updates);
  - ``heldout_metrics(held_set, indices, device) -> dict``: ``log.csv``'s held-out columns
    (``val_pred_loss`` is then the policy's held-out action error);
  - ``set_action_codec(codec)``: the harness gives the run's :class:`~lewm_bench.data.actions.ActionCodec`
    before the first ``act``; one trained instance serves every episode, so ``act`` keeps no state.
- **learned online** (it defines ``learn``; e.g. ``sac-her``): trained by ``lewm-bench train`` in the env
  itself, not on the dataset (the run still records the dataset its evaluation tasks come from). It has
  ``config_class``/``presets``, ``set_action_codec`` and ``learn(env_kwargs, seed, run_dir, resume, progress)
  -> seconds``, which trains into ``run_dir`` (its own checkpoints there, resumable when ``resume``) and leaves
  the trained weights in the module (an ``nn.Module``), which the trainer saves as ``checkpoint.pt``; or
- **loaded from a file** (it defines the classmethod ``from_file(path, env, image_size)``; e.g. ``sb3``):
  ``lewm-bench eval --agent NAME --checkpoint PATH``.

A policy with ``observes = "state"`` is given the physical state and the goal state instead of the
images: ``act(state, goal_state)``; such an agent is built with ``env=`` the env's name (its state and
action sizes come from the :class:`~lewm_bench.envs.spec.EnvSpec`). ``uses_rewards = True`` says it
learned from the env's reward (recorded in results). ``grid_envs``: the envs where an ``in_grid`` agent
joins the default grid (default: all).

**Every agent** may declare how tables show it: ``display_name`` (default: its registered name),
``colour`` (a matplotlib colour; default: one derived from the name), ``in_grid`` (``True``: part
of ``lewm-bench run --suite all`` and ``smoke``; default ``False``) and ``order`` (its place in
tables; default 100). The paper's figures for an agent live in ``lewm_bench/paper_results.csv``.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, get_args

from torch import Tensor

from lewm_bench.errors import LewmBenchError

if TYPE_CHECKING:
    from lewm_bench.profiles import Profile
    from lewm_bench.training.config import TrainConfig

ENTRY_POINT_GROUP = "lewm_bench.agents"
DISTRIBUTION = "lewm-bench"
"""Agents from this distribution's entry points are ``built-in``."""
AgentKind = Literal["world_model", "policy"]
KINDS: tuple[str, ...] = get_args(AgentKind)
REQUIRED = {
    "world_model": ("config_class", "presets", "loss_terms", "loss", "encode", "predict", "rollout", "history",
                    "tokens_per_frame", "encoder_tokens_per_frame"),
    "policy": ("act",),
}
ONLINE_POLICY = ("config_class", "presets", "learn", "set_action_codec")
"""What a policy that defines ``learn`` must also define (see the module docstring)."""
TRAINABLE_POLICY = ("config_class", "presets", "loss_terms", "prepare", "attach_data", "training_batch", "after_step",
                    "heldout_metrics", "set_action_codec")
"""What a policy that defines ``loss`` must also define (see the module docstring)."""

T = TypeVar("T", bound=type)


class RegistryError(LewmBenchError):
    """An agent could not be registered or found."""


class LossTerms(NamedTuple):
    """What a world model's ``loss`` returns."""

    loss: Tensor
    """The scalar that is optimised."""
    terms: dict[str, Tensor]
    """Every named term (scalars, detached or not), in ``loss_terms`` order; logged one column each."""
    embeddings: Tensor
    """(B, T, ...) encoder embeddings of the clip, for monitoring."""


@dataclass(frozen=True)
class AgentInfo:
    name: str
    cls: type
    kind: AgentKind
    """``world_model`` (trained, plans with CEM) or ``policy`` (acts directly; trained or not: ``trainable``)."""
    source: str
    """Where it came from: ``built-in``, ``plugin DIST`` or the registering module."""

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.cls) or "").split("\n")[0]

    @property
    def display_name(self) -> str:
        return getattr(self.cls, "display_name", self.name)

    @property
    def colour(self) -> str:
        return getattr(self.cls, "colour", None) or default_colour(self.name)

    @property
    def in_grid(self) -> bool:
        return bool(getattr(self.cls, "in_grid", False))

    @property
    def order(self) -> int:
        return int(getattr(self.cls, "order", 100))

    @property
    def uses_proprio(self) -> bool:
        """The world model also takes the proprioceptive state (``uses_proprio = True``)."""
        return bool(getattr(self.cls, "uses_proprio", False))

    def build(self, config: Any, image_size: int, action_dim: int, env: str) -> Any:
        """A fresh model for ``env``; one that ``uses_proprio`` gets the env's proprio indices, a policy that
        ``observes`` the state gets the env's name."""
        if self.observes == "state":
            return self.cls(config, image_size, action_dim, env=env)
        if not self.uses_proprio:
            return self.cls(config, image_size, action_dim)
        from lewm_bench.envs import env_spec

        proprio = env_spec(env).proprio
        if not proprio:
            raise RegistryError(f"agent {self.name!r} uses proprioception but env {env!r} declares none; give "
                                f"its EnvSpec.of(..., proprio=(state indices)) or choose another agent")
        return self.cls(config, image_size, action_dim, proprio=proprio)

    @property
    def observes(self) -> str:
        """What a policy's ``act`` is given: ``pixels`` (observation and goal images) or ``state`` (physical states)."""
        return str(getattr(self.cls, "observes", "pixels"))

    @property
    def trainable(self) -> bool:
        """Trained by ``lewm-bench train`` before evaluation: every world model, and policies that define ``loss``
        (offline, on the dataset) or ``learn`` (online, in the env)."""
        return self.kind == "world_model" or hasattr(self.cls, "loss") or self.learns_online

    @property
    def plans_in_simulator(self) -> bool:
        """An untrained policy that plans in its own copy of the simulator (e.g. ``oracle``)."""
        return self.kind == "policy" and bool(getattr(self.cls, "plans_in_simulator", False))

    @property
    def learns_online(self) -> bool:
        """A policy trained in the env itself (``learn``), not on the dataset."""
        return self.kind == "policy" and hasattr(self.cls, "learn")

    @property
    def from_file(self) -> bool:
        """A policy loaded from a file the user gives (``from_file``), e.g. a saved SB3 model."""
        return self.kind == "policy" and hasattr(self.cls, "from_file")

    def in_grid_for(self, env: str) -> bool:
        """Part of the default grid for ``env``: ``in_grid`` and ``env`` among its ``grid_envs`` (default: all)."""
        envs = getattr(self.cls, "grid_envs", None)
        return self.in_grid and (envs is None or env in envs)

    def config_for(self, profile: str) -> Any:
        """The trainable agent's architecture preset for ``profile``; the error names the presets it has."""
        presets: Mapping[str, Any] = self.cls.presets
        if profile not in presets:
            raise RegistryError(f"agent {self.name!r} has no preset for profile {profile!r}; it has "
                                f"{', '.join(presets) or 'none'}: add presets[{profile!r}] to {self.cls.__qualname__}")
        return presets[profile]

    def train_config_for(self, profile: Profile) -> TrainConfig:
        """The agent's own optimisation recipe for the profile (``train_presets``), else the profile's."""
        return getattr(self.cls, "train_presets", {}).get(profile.name, profile.train)


def default_colour(name: str) -> str:
    """A matplotlib colour derived from an agent's name (C3-C9: C0-C2 are the built-in world models')."""
    return f"C{3 + sum(map(ord, name)) % 7}"


_REGISTRY: dict[str, AgentInfo] = {}
_BROKEN: dict[str, str] = {}
"""Plugins whose entry point failed to load: name -> the one-line reason."""
_LOADED = False


def register_agent(name: str, cls: T | None = None, *, source: str | None = None) -> T | Callable[[T], T]:
    """Register ``cls`` under ``name``; usable as ``@register_agent("name")`` or ``register_agent("name", cls)``.

    Raises:
        RegistryError: the name is taken, or the class lacks what its kind requires.
    """
    def add(klass: T) -> T:
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise RegistryError(f"agent name {name!r} must be non-empty letters, digits, '-' or '_'")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.cls is not klass:
            raise RegistryError(f"agent {name!r} is already registered by {existing.source} "
                                f"({existing.cls.__module__}.{existing.cls.__qualname__}); choose another name")
        kind = getattr(klass, "kind", None)
        label = f"agent {name!r} ({klass.__module__}.{klass.__qualname__})"
        if kind not in KINDS:
            raise RegistryError(f"{label}: class attribute 'kind' must be one of {', '.join(KINDS)}; got {kind!r}")
        required = REQUIRED[kind] + (TRAINABLE_POLICY if kind == "policy" and hasattr(klass, "loss") else ()) \
            + (ONLINE_POLICY if kind == "policy" and hasattr(klass, "learn") else ())
        missing = [m for m in required if not hasattr(klass, m)]
        if missing:
            raise RegistryError(f"{label}: a {kind} must define {', '.join(missing)} (see lewm_bench.registry)")
        if kind == "policy" and (hasattr(klass, "loss") or hasattr(klass, "learn")):
            wrong = [p for p, c in klass.presets.items() if not isinstance(c, klass.config_class)]
            if wrong:
                raise RegistryError(f"{label}: presets {wrong} are not {klass.config_class.__name__} instances")
        if kind == "world_model":
            cfg = klass.config_class
            if not (dataclasses.is_dataclass(cfg) and "history" in {f.name for f in dataclasses.fields(cfg)}):
                raise RegistryError(f"{label}: config_class must be a dataclass with a 'history' field; got {cfg!r}")
            wrong = [p for p, c in klass.presets.items() if not isinstance(c, cfg)]
            if wrong:
                raise RegistryError(f"{label}: presets {wrong} are not {cfg.__name__} instances")
        src = source or (existing.source if existing is not None else klass.__module__)
        _REGISTRY[name] = AgentInfo(name, klass, kind, src)
        return klass

    return add(cls) if cls is not None else add


def unregister_agent(name: str) -> None:
    """Remove ``name`` from the registry (for tests and interactive sessions)."""
    _REGISTRY.pop(name, None)


def load_agents() -> None:
    """Load every agent of the ``lewm_bench.agents`` entry-point group (once).

    A plugin that fails to import (or calls ``sys.exit``) is reported once on stderr, by name, and
    left out; the other agents keep working, and asking for the broken one says why it is missing.
    """
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        source = "built-in" if dist == DISTRIBUTION else f"plugin {dist}"
        try:
            obj = ep.load()
            if not inspect.isclass(obj):
                raise RegistryError(f"entry point {ep.value} must name a class; got {type(obj).__name__}")
            if _REGISTRY.get(ep.name) is None or _REGISTRY[ep.name].cls is not obj:
                register_agent(ep.name, obj, source=source)
            else:
                _REGISTRY[ep.name] = dataclasses.replace(_REGISTRY[ep.name], source=source)
        except (Exception, SystemExit) as exc:  # one broken plugin must not take the others down
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            _BROKEN[ep.name] = f"agent {ep.name!r} from {dist} ({ep.value}) failed to load: {reason}"
            print(f"lewm-bench: warning: {_BROKEN[ep.name]}; it is left out", file=sys.stderr)


def agents() -> dict[str, AgentInfo]:
    """Every registered agent, built-ins and plugins, by name (in table order)."""
    load_agents()
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))


def grid_agents() -> tuple[str, ...]:
    """The agents that say they belong in the default grid (``in_grid``), in table order."""
    return tuple(name for name, info in agents().items() if info.in_grid)


def get_agent(name: str) -> AgentInfo:
    """The agent registered under ``name``; the error lists the valid names."""
    load_agents()
    if name in _BROKEN and name not in _REGISTRY:
        raise RegistryError(_BROKEN[name])
    if name not in _REGISTRY:
        raise RegistryError(f"unknown agent {name!r}; valid agents: {', '.join(sorted(_REGISTRY))} (plugins register "
                            f"through the '{ENTRY_POINT_GROUP}' entry-point group)")
    return _REGISTRY[name]


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (possibly nested) config dataclass from its ``dataclasses.asdict`` / JSON form."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints.get(f.name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise RegistryError(f"{cls.__name__} has no fields {', '.join(unknown)}; the config comes from another "
                            "version of the agent")
    return cls(**kwargs)


def _hints(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to the nested defaults' types
        return {f.name: type(f.default_factory()) for f in dataclasses.fields(cls)
                if f.default_factory is not dataclasses.MISSING}
