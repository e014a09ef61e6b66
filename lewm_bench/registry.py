"""The agent registry: every agent the suite can train and evaluate, built-in or from a plugin.

Register a class under a short name with the decorator (or a plain call)::

    from lewm_bench.registry import register_agent

    @register_agent("my-wm")
    class MyWorldModel(torch.nn.Module):
        ...

or expose it from an installed package through the entry-point group ``lewm_bench.agents``::

    [project.entry-points."lewm_bench.agents"]
    my-wm = "my_package.agent:MyWorldModel"

The built-in agents (``lewm``, ``pldm``, ``dinowm``, ``random``) register themselves with the same
decorator. Registration checks the class against its kind's contract and names what is missing.

**World models** (``kind = "world_model"``) are ``torch.nn.Module`` classes with

- ``config_class``: a frozen dataclass of the architecture and loss (with a ``history`` field: the
  frames of context the model is trained with), and ``default_config(profile) -> config`` sizing it
  for a profile (``paper``, ``cpu``, ``smoke``);
- ``__init__(config, image_size, action_dim)`` (``action_dim`` = one action block, frameskip x env dims);
- ``loss(frames, actions, generator) -> LossTerms`` on clips of ``history + 1`` frames, and
  ``loss_terms``: the names of the terms it reports (logged one column each, ``pred_loss`` first);
- ``encode(frames)``, ``predict(embeddings, actions)`` and ``rollout(history, actions)`` — see
  :class:`lewm_bench.protocols.WorldModel`; ``history``, ``tokens_per_frame``, ``encoder_tokens_per_frame``.

Optional: ``planning_cost(predicted, goal)`` (default: squared L2 of the final embedding),
``prepare(train_set, device, seed, progress)`` (called once before training starts, e.g. to
pre-train a frozen encoder), ``encoder_kind`` (recorded in results), ``check_collapse = False``
(for frozen encoders, which cannot collapse).

**Policies** (``kind = "policy"``) act without a world model and are not trained: ``__init__(action_dim,
seed)`` and ``act(observation, goal) -> (k, action_dim)`` env actions to execute before the next call.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, NamedTuple, TypeVar

from torch import Tensor

from lewm_bench.errors import LewmBenchError

ENTRY_POINT_GROUP = "lewm_bench.agents"
KINDS = ("world_model", "policy")
REQUIRED = {
    "world_model": ("config_class", "default_config", "loss_terms", "loss", "encode", "predict", "rollout", "history",
                    "tokens_per_frame", "encoder_tokens_per_frame"),
    "policy": ("act",),
}
BUILTIN_MODULES = ("lewm_bench.models.lewm", "lewm_bench.baselines.pldm", "lewm_bench.baselines.dinowm",
                   "lewm_bench.baselines.random")

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
    kind: str
    """``world_model`` (trained, plans with CEM) or ``policy`` (acts directly)."""
    source: str
    """Where it came from: ``built-in``, ``plugin DIST`` or the registering module."""

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.cls) or "").split("\n")[0]


_REGISTRY: dict[str, AgentInfo] = {}
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
        missing = [m for m in REQUIRED[kind] if not hasattr(klass, m)]
        if missing:
            raise RegistryError(f"{label}: a {kind} must define {', '.join(missing)} (see lewm_bench.registry)")
        if kind == "world_model":
            cfg = klass.config_class
            if not (dataclasses.is_dataclass(cfg) and "history" in {f.name for f in dataclasses.fields(cfg)}):
                raise RegistryError(f"{label}: config_class must be a dataclass with a 'history' field; got {cfg!r}")
        src = source or ("built-in" if klass.__module__ in BUILTIN_MODULES else klass.__module__)
        _REGISTRY[name] = AgentInfo(name, klass, kind, src)
        return klass

    return add(cls) if cls is not None else add


def unregister_agent(name: str) -> None:
    """Remove ``name`` from the registry (for tests and interactive sessions)."""
    _REGISTRY.pop(name, None)


def load_agents() -> None:
    """Import the built-in agents and every plugin of the ``lewm_bench.agents`` entry-point group (once)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        try:
            obj = ep.load()
        except Exception as exc:
            raise RegistryError(f"plugin agent {ep.name!r} from {dist} ({ep.value}) failed to import: "
                                f"{type(exc).__name__}: {exc}") from exc
        if not inspect.isclass(obj):
            raise RegistryError(f"plugin agent {ep.name!r} from {dist}: entry point {ep.value} must name a class")
        if _REGISTRY.get(ep.name, None) is None or _REGISTRY[ep.name].cls is not obj:
            register_agent(ep.name, obj, source=f"plugin {dist}")


def agents() -> dict[str, AgentInfo]:
    """Every registered agent, built-ins and plugins, by name."""
    load_agents()
    return dict(_REGISTRY)


def get_agent(name: str) -> AgentInfo:
    """The agent registered under ``name``; the error lists the valid names."""
    load_agents()
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
