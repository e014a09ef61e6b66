"""The paper's figures (``paper_results.csv``): one tidy table keyed by agent and env.

Success rates are fractions of the 50 evaluation episodes (Fig. 6); planning times are seconds per
call on one NVIDIA L40S (Fig. 3, no env). A new agent's paper figures are rows of the CSV, not code.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pandas as pd


@cache
def paper_results() -> pd.DataFrame:
    """Columns ``agent, env, metric, value, source`` (``env`` empty for per-call planning times)."""
    with files("lewm_bench").joinpath("paper_results.csv").open() as fh:
        return pd.read_csv(fh, dtype={"agent": str, "env": str, "metric": str, "source": str}, keep_default_na=False)


def _value(agent: str, env: str, metric: str) -> float | None:
    t = paper_results()
    hit = t[(t.agent == agent) & (t.env == env) & (t.metric == metric)]
    return float(hit.value.iloc[0]) if len(hit) else None


def paper_success(env: str, agent: str) -> float | None:
    """The paper's success rate (a fraction) for ``agent`` on ``env``; None where the paper has none."""
    return _value(agent, env, "success_rate")


def paper_plan_time(agent: str) -> float | None:
    """The paper's seconds per planning call for ``agent`` (one L40S); None where the paper has none."""
    return _value(agent, "", "plan_time_s")


def paper_plan_time_agents() -> list[str]:
    """Agents the paper gives a planning time for."""
    t = paper_results()
    return list(t[t.metric == "plan_time_s"].agent)
