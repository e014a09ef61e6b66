"""Content identities: short hashes of what determines a result, never of where it is stored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def content_hash(payload: Any) -> str:
    """16 hex digits of the SHA-256 of ``payload`` as canonical JSON (sorted keys; tuples as lists)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tensor_digest(tensors: Iterable[torch.Tensor]) -> str:
    """16 hex digits of the SHA-256 of the tensors' raw bytes, in order (values and dtype widths, not shapes)."""
    import torch  # here, so that reading identities does not load torch

    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def dataset_identity(env: str, env_kwargs: dict[str, Any], image_size: int, collector: str,
                     collector_params: dict[str, Any], seed: int, max_steps: int, held_out_fraction: float,
                     episodes: int) -> str:
    """The identity of a dataset's content: everything that decides it (not its path, not the worker count).

    Computed from a :class:`~lewm_bench.collect.runner.CollectConfig` before collecting and from a
    dataset file's attributes after, so the two agree.
    """
    return content_hash({"env": env, "env_kwargs": env_kwargs, "image_size": image_size, "collector": collector,
                         "collector_params": collector_params, "seed": seed, "max_steps": max_steps,
                         "held_out_fraction": held_out_fraction, "episodes": episodes})
