"""The planner contract, written once against :class:`lewm_bench.protocols.WorldModel`.

A planning call encodes the context frames and the goal frame once, optimises a sequence of
``horizon`` action blocks (in the z-scored space the model was trained in) to minimise the
terminal cost between the last predicted embedding and the goal embedding, and returns the plan
with its cost trace and wall-clock time. Every episode of a batch is planned in the same call:
all episodes' candidates go through the predictor together.
"""

from __future__ import annotations

import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lewm_bench.models.layers import tensor_versions
from lewm_bench.protocols import WorldModel, proprio_kwargs
from lewm_bench.provenance import native_bf16


@dataclass(frozen=True)
class PlanResult:
    actions: Tensor
    """(B, horizon, A) planned action blocks, z-scored."""
    costs: Tensor
    """(iterations, B) cost of the best candidate after each iteration."""
    seconds: float
    """Wall-clock time of the whole call (encoding included; CUDA synchronised)."""


def terminal_cost(model: WorldModel, predicted: Tensor, goal: Tensor) -> Tensor:
    """Cost of predicted final embeddings (N, ...) against goal embeddings (N, ...): the model's own
    ``planning_cost`` when it defines one, else the squared L2 distance."""
    own = getattr(model, "planning_cost", None)
    if own is not None:
        return own(predicted, goal)
    return (predicted.float() - goal.float()).pow(2).flatten(1).sum(-1)


class Planner:
    """Base class: encode once, optimise, time. Subclasses implement :meth:`optimize`.

    ``config`` is the planner's frozen config; it must have ``horizon`` (action blocks planned)
    and ``bf16`` (run the model's forward passes under bf16 autocast where the device has fast bf16 kernels:
    :func:`lewm_bench.provenance.native_bf16`; fp32 elsewhere).
    """

    cuda_graphs: bool = True
    """On CUDA, candidate rollouts run as a captured CUDA graph (:class:`CapturedCost`), and so does the encoding of
    a call's frames: the same kernels on the same inputs, without the per-kernel launch cost. An execution setting,
    not part of the results' identity; set it False on an instance to run eagerly (``bench planning`` does, for its
    reference)."""
    compile_rollouts: bool = False
    """``torch.compile`` the candidate rollouts (inductor fuses the predictor's many small kernels; with CUDA graphs
    the fused kernels are captured). Off by default: compiling takes tens of seconds per model and input shape."""
    cast_weights: bool = True
    """Captured graphs under a lower-precision autocast read copies of the model's linear weights in that precision
    (:class:`LinearWeightCopies`: the same numbers, no per-replay casts). An execution setting; False captures the
    casts in the graph (``results/bench`` A/Bs)."""
    max_graphs: int = 8
    """Captured graphs kept per planner (one per model, input shapes and what is captured: the encoding of a call's
    frames, the rollouts), least recently used dropped first."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.horizon: int = config.horizon
        self.bf16: bool = config.bf16
        self._graphs: OrderedDict[tuple, CapturedGraph] = OrderedDict()

    def uses_bf16(self, device: torch.device) -> bool:
        """Whether the model runs under bf16 autocast on ``device`` (asked for, and fast there)."""
        return self.bf16 and native_bf16(device)

    def solve(self, model: WorldModel, context: Tensor, past_actions: Tensor, goal: Tensor,
              seeds: list[int] | None = None, states: Tensor | None = None) -> PlanResult:
        """Plan from frames.

        Args:
            model: the world model (in eval mode).
            context: (B, c, 3, H, W) the last c observed frames, ``frameskip`` steps apart.
            past_actions: (B, c - 1, A) z-scored action blocks taken between the context frames
                (shape (B, 0, A) with one context frame: it also gives the block size A).
            goal: (B, 3, H, W) goal frames.
            seeds: one seed per episode for the optimiser's randomness; each episode draws from its
                own generator, so a plan does not depend on which other episodes share the call
                (None: torch's global generator).
            states: (B, c + 1, state_dim) physical states of the context frames and, last, of the goal;
                required by (and given only to) a model that uses proprioception.
        """
        if context.dim() != 5 or goal.dim() != 4 or past_actions.shape[1] != context.shape[1] - 1:
            raise ValueError(f"solve expects context (B, c, 3, H, W), past_actions (B, c-1, A), goal (B, 3, H, W); "
                             f"got {tuple(context.shape)}, {tuple(past_actions.shape)}, {tuple(goal.shape)}")
        sync = context.device.type == "cuda"
        if sync:
            torch.cuda.synchronize(context.device)
        start = time.perf_counter()
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=self.uses_bf16(context.device)):
            with torch.no_grad():
                frames = torch.cat([context, goal[:, None]], 1)  # one encoder pass for context and goal
                z = self._encode(model, frames, states)
                history, goal_z = z[:, :-1], z[:, -1]
            gens = None if seeds is None else [torch.Generator(context.device).manual_seed(int(s)) for s in seeds]
            actions, costs = self.optimize(model, history, past_actions, goal_z, gens)
        if sync:
            torch.cuda.synchronize(context.device)
        return PlanResult(actions, costs, time.perf_counter() - start)

    def optimize(self, model: WorldModel, history: Tensor, past_actions: Tensor, goal: Tensor,
                 generators: list[torch.Generator] | None) -> tuple[Tensor, Tensor]:
        """Return (plan (B, horizon, A), cost trace (iterations, B)) from encoded history and goal."""
        raise NotImplementedError(f"{type(self).__name__} must implement optimize(model, history, past_actions, "
                                  "goal, generator) -> (actions, costs)")

    def cost_function(self, model: WorldModel, history: Tensor, past_actions: Tensor, goal: Tensor,
                      plans_shape: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
        """:func:`rollout_cost` bound to one call's tiled inputs: ``plans`` (B, N, H, A) -> costs (B, N).

        On CUDA with :attr:`cuda_graphs` and no gradient, a graph captured for these shapes (once per model
        and shape, then kept) is replayed; elsewhere the rollout runs eagerly. The returned costs of a
        replayed graph live in its static output: use them before the next call.
        """
        fn = self._rollout_fn(model, history.device)
        if not self._graphed(history):
            return lambda plans: fn(model, history, past_actions, goal, plans)
        autocast = _autocast_state(history.device)
        key = ("rollout", *_identity(model), getattr(model, "kv_cache", None), autocast, fn is not rollout_cost,
               self.cast_weights, tuple(plans_shape), *_shapes((history, past_actions, goal)))
        graph = self._kept(key, model, lambda: CapturedCost(model, history, past_actions, goal, plans_shape, autocast,
                                                            fn, cast_weights=self.cast_weights))
        graph.bind(history, past_actions, goal)
        return graph

    def _rollout_fn(self, model: WorldModel, device: torch.device) -> Callable[..., Tensor]:
        if self.compile_rollouts and not torch.is_grad_enabled():
            return _compiled_rollout_cost(model, device)
        return rollout_cost

    def _graphed(self, history: Tensor) -> bool:
        return self.cuda_graphs and history.is_cuda and not torch.is_grad_enabled()

    def _encode(self, model: WorldModel, frames: Tensor, states: Tensor | None) -> Tensor:
        """``model.encode`` of one call's frames (and their states, for a model that uses them). On CUDA with
        :attr:`cuda_graphs` a captured graph per model and shapes: a ViT's few hundred kernels for a handful of frames
        replayed at once instead of launched one by one from Python."""
        kwargs = proprio_kwargs(model, states)
        if not self._graphed(frames):
            return model.encode(frames, **kwargs)
        args = (frames, *kwargs.values())

        def encode(frames: Tensor, *rest: Tensor) -> Tensor:
            return model.encode(frames, **dict(zip(kwargs, rest)))

        autocast = _autocast_state(frames.device)
        key = ("encode", *_identity(model), autocast, *_shapes(args))
        return self._kept(key, model, lambda: CapturedGraph(encode, args, autocast, model))(*args).clone()

    def _kept(self, key: tuple, model: WorldModel, capture: Callable[[], CapturedGraph]) -> Any:
        """The kept graph under ``key`` (``capture()`` when none is), now the most recently used."""
        graph = self._graphs.pop(key, None)
        if graph is None or graph.model is not model:
            graph = capture()
        self._graphs[key] = graph  # most recently used last
        while len(self._graphs) > self.max_graphs:
            self._graphs.popitem(last=False)
        return graph


def _autocast_state(device: torch.device) -> tuple[bool, torch.dtype]:
    return torch.is_autocast_enabled(device.type), torch.get_autocast_dtype(device.type)


def _identity(model: nn.Module) -> tuple:
    """The model and where its tensors live: a graph reads them by address, so a move or a cast recaptures."""
    return id(model), tuple(t.data_ptr() for t in (*model.parameters(), *model.buffers()))


def _shapes(tensors: tuple[Tensor, ...]) -> tuple:
    return tuple((tuple(t.shape), t.dtype, t.device) for t in tensors)


class CapturedGraph:
    """``fn(*args)`` for fixed input shapes, captured once as a CUDA graph and replayed on copies of new ``args``.

    On a GPU at the paper's sizes a planning call is thousands of small kernels whose launch cost, not their
    arithmetic, sets the time. The graph replays the same kernels on static input buffers (the caller's tensors are
    copied in), so its outputs are the eager ones. Autocast is captured as it was on entry, with its weight-cast
    cache off (a cached cast would be freed when the caller's autocast region ends, under the graph's feet).
    """

    def __init__(self, fn: Callable[..., Any], args: tuple[Tensor, ...], autocast: tuple[bool, torch.dtype],
                 model: nn.Module, warmup: int = 2) -> None:
        self.model = model
        """The module whose tensors ``fn`` reads (the graph reads them by address)."""
        self.args = [t.clone() for t in args]
        device = self.args[0].device
        cast = torch.autocast(device.type, dtype=autocast[1], enabled=autocast[0], cache_enabled=False)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), cast:  # lazy initialisation (cuBLAS handles, kernel choice) off the capture
            for _ in range(warmup):
                fn(*self.args)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(self.graph), cast:
                self.outputs = fn(*self.args)
        except RuntimeError as err:
            raise RuntimeError(f"{type(model).__name__} could not be captured as a CUDA graph for planning: {err}\n"
                               "A model's encode and rollout must be capture-safe on CUDA (no copies between host and "
                               "device, no reading of values on the host, no data-dependent shapes); make them so, or "
                               "plan eagerly with planner.cuda_graphs = False.") from err

    def __call__(self, *args: Tensor) -> Any:
        """Replay on ``args`` (copied into the graph's buffers); the outputs are the graph's, overwritten next time."""
        for static, x in zip(self.args, args):
            static.copy_(x)
        self.graph.replay()
        return self.outputs


class CapturedCost(CapturedGraph):
    """:func:`rollout_cost` for fixed input shapes as a :class:`CapturedGraph`: called with candidate plans, on static
    copies of one planning call's tiled history, past actions and goal (:meth:`bind`).

    Under a lower-precision autocast the graph reads copies of the model's linear weights in that precision
    (:class:`LinearWeightCopies`), refreshed before a replay whenever the model's own changed: the casts autocast would
    redo inside the graph at every replay (a third of a compiled LeWM rollout's kernels on an H200) are done once,
    with the same rounding.
    """

    def __init__(self, model: WorldModel, history: Tensor, past_actions: Tensor, goal: Tensor,
                 plans_shape: tuple[int, ...], autocast: tuple[bool, torch.dtype],
                 fn: Callable[..., Tensor] | None = None, warmup: int = 2, cast_weights: bool = True) -> None:
        fn = fn or rollout_cost
        self.inputs = [history.clone(), past_actions.clone(), goal.clone()]
        self.weights = LinearWeightCopies(model, autocast[1]) if cast_weights and autocast[0] else None
        run = fn if self.weights is None else self.weights.bind(fn)
        plans = torch.zeros(plans_shape, device=history.device)
        super().__init__(lambda plans: run(model, *self.inputs, plans), (plans,), autocast, model, warmup)

    def bind(self, history: Tensor, past_actions: Tensor, goal: Tensor) -> None:
        """Copy one planning call's (tiled) inputs into the graph's input buffers (and refresh the weight copies)."""
        for static, x in zip(self.inputs, (history, past_actions, goal)):
            static.copy_(x)
        if self.weights is not None:
            self.weights.refresh()


class LinearWeightCopies:
    """Copies of a model's ``nn.Linear`` weights and biases in an autocast dtype, to run a function of the model on.

    Autocast runs a linear layer on its weights cast to the lower precision; these copies hold exactly those casts
    (the same rounding), so a function run on them computes what it computes under autocast on the model's own
    weights, without casting them again at every call. Only float32 parameters of ``nn.Linear`` modules that no
    other module shares are copied; every other parameter stays as it is.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        self.model, self.dtype = model, dtype
        uses = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
        self.names = [f"{prefix}.{name}" if prefix else name
                      for prefix, module in model.named_modules() if isinstance(module, nn.Linear)
                      for name, p in module.named_parameters(recurse=False)
                      if p.dtype == torch.float32 and uses[id(p)] == 1]
        self.copies: dict[str, Tensor] = {}
        self._seen: dict[str, tuple[int, int]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Copy again every weight that changed (another tensor, or written in place) since the last copy."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name in self.names:
                p = params[name]
                seen = (id(p), p._version)
                if self._seen.get(name) != seen:
                    if name in self.copies:
                        self.copies[name].copy_(p)
                    else:
                        self.copies[name] = p.detach().to(self.dtype)
                    self._seen[name] = seen

    def bind(self, fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        """``fn(model, *inputs)`` run with the model's linear weights replaced by these copies."""
        copies = {f"model.{name}": t for name, t in self.copies.items()}

        def run(model: nn.Module, *inputs: Tensor) -> Tensor:
            return torch.func.functional_call(_Bound(model, fn), copies, inputs)

        return run


class _Bound(nn.Module):
    """``fn(model, *inputs)`` as a module's forward, for :func:`torch.func.functional_call`."""

    def __init__(self, model: nn.Module, fn: Callable[..., Tensor]) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.fn(self.model, *inputs)


_COMPILED: Callable[..., Tensor] | None = None
_FROZEN: weakref.WeakKeyDictionary[nn.Module, tuple] = weakref.WeakKeyDictionary()
"""Per model, the (address, version) of its tensors when the CPU's compiled rollouts last froze them."""


def _compiled_rollout_cost(model: WorldModel, device: torch.device) -> Callable[..., Tensor]:
    """:func:`rollout_cost` through ``torch.compile`` (static shapes, compiled once per process), for one planning
    call of ``model`` on ``device``.

    On the CPU it compiles (and runs) with inductor's ``freezing``: the model's weights become constants of the graph,
    which inductor folds (their bf16 casts done once) and packs for oneDNN's products. The paper-architecture LeWM call
    2.93-2.95 -> 2.57-2.61 s, 0.62-0.64 -> 0.70-0.72 of the bf16 GEMM (``results/bench/planning-freezing-avx512.txt``).
    Dynamo reads the setting while it traces, so it is set around each call, not passed as a compile option (which
    leaves the weights as inputs: the 1.00x once recorded). A model of another object compiles again (dynamo guards on
    it); a model whose weights were written in place since (a checkpoint loaded into it) would still run on the frozen
    ones, so each planning call compares the model's tensors (address and version counter) with those it was compiled
    on, and on a change drops every compiled graph of the process (``torch._dynamo.reset``) to compile again."""
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = torch.compile(rollout_cost, dynamic=False)
    if device.type != "cpu":
        return _COMPILED
    from torch._inductor import config as inductor_config

    weights = tensor_versions(model)
    if _FROZEN.setdefault(model, weights) != weights:
        torch._dynamo.reset()  # its graphs hold the weights it had then
        _FROZEN.clear()
        _FROZEN[model] = weights
    compiled = _COMPILED

    def frozen(*inputs: Any) -> Tensor:
        with inductor_config.patch(freezing=True):
            return compiled(*inputs)

    return frozen


def episode_noise(b: int, shape: tuple[int, ...], generators: list[torch.Generator] | None, device) -> Tensor:
    """Standard-normal noise (B, *shape), episode i drawn from ``generators[i]``."""
    if generators is None:
        return torch.randn(b, *shape, device=device)
    return torch.stack([torch.randn(*shape, generator=g, device=device) for g in generators])


def tile(x: Tensor, n: int) -> Tensor:
    """Repeat each episode's row for its ``n`` candidates: (B, ...) -> (B * n, ...)."""
    return x.repeat_interleave(n, dim=0)


CPU_CHUNK_TOKENS = 2048
"""On the CPU, :func:`rollout_cost` rolls the candidates out in chunks of at most this many predictor tokens per frame
(rows x the model's ``tokens_per_frame``; at least one row). A batched planning call has B x N rows (50 episodes x 300
candidates in an evaluation); their activations in one pass leave the cache, and the predictor's products run at half
the rate (AVX-512 EPYC, bf16: a 15,000 x 192 x 2,048 product at 417 GFLOP/s against 948 at 3,000 rows). In chunks,
one CEM iteration runs 1.54x faster for the cpu-profile LeWM (50 episodes), 1.98x for DINO-WM-style's 16-token frames
(10 episodes; 1.25x for one episode) and 1.23x for PLDM (20 episodes), with the same costs
(``results/bench/planning-chunks-avx512.txt``, one thread). Every row's rollout is independent of the others (the
models run in eval mode), so the costs are those of one pass up to the products' float rounding. Not on a GPU, which
wants the whole batch in one pass."""


def rollout_cost(model: WorldModel, history: Tensor, past_actions: Tensor, goal: Tensor, plans: Tensor) -> Tensor:
    """Terminal cost of candidate plans (B, N, H, A) -> (B, N).

    ``history``, ``past_actions`` and ``goal`` are already tiled to one row per candidate
    (:func:`tile`), once per planning call. On the CPU the rows go through the model in chunks
    (:data:`CPU_CHUNK_TOKENS`).
    """
    b, n = plans.shape[:2]
    actions = torch.cat([past_actions, plans.flatten(0, 1)], 1)
    rows = len(actions)
    chunk = rows if history.device.type != "cpu" else max(1, CPU_CHUNK_TOKENS // getattr(model, "tokens_per_frame", 1))
    final = torch.cat([model.rollout(history[i:i + chunk], actions[i:i + chunk])[:, -1]
                       for i in range(0, rows, chunk)])
    return terminal_cost(model, final, goal).view(b, n)
