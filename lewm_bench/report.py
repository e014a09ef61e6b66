"""``lewm-bench report``: tables and plots from finished runs, beside the paper's numbers.

Reads ``ROOT/summary.csv`` (one row per finished evaluation, SPEC §11) and the training logs
``ROOT/train/ENV/RUN/log.csv`` (with the run's ``config.json``), and writes into ``OUT``
(default ``ROOT/report``). Several roots (runs made in separate folders, e.g. one group of agents at a time)
make one report: their rows are pooled, and the same evaluation found in two roots is an error.

- ``results.csv``: one row per (profile, env, agent) with the seeds aggregated (columns below);
- ``results.md``: per profile, the paper's Fig. 6 table (ours beside the paper) and a table of
  time per call, tokens and parameters — a world model's call is one planning call, a policy's
  (GCBC, GCIQL, GCIVL, random: no planner) one decision; the ``timed_call`` column says which;
- ``success.png``, ``planning_time.png`` and ``straightness.png``;
- from the per-task outcomes under ``ROOT/eval`` (:mod:`lewm_bench.per_task`): ``oracle_tasks.csv``
  (how every agent does on the tasks the oracle solves and fails) and ``training_data.csv`` (one agent
  trained on different datasets, on the same tasks), with their sections in ``results.md``.

Success rates are fractions in [0, 1] in the data (``results.csv`` and :mod:`lewm_bench.paper`); the
Markdown and the plots show percent. Aggregation over seeds: ``success_rate`` is the mean over seeds,
``success_ci_low``/``success_ci_high`` the Wilson 95% interval of all episodes of all seeds pooled,
``success_std`` the standard deviation over seeds (NaN for one seed), ``plan_time_median_s``,
token and parameter counts the median over seeds, ``straightness``, ``train_time_s`` and
``eval_time_s`` the mean over seeds; ``device``, ``commit`` (and ``encoder`` where the summary has
it) list the distinct values, joined by ``"; "``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lewm_bench.envs.spec import env_names, env_spec
from lewm_bench.errors import LewmBenchError
from lewm_bench.evaluation.protocol import wilson_interval
from lewm_bench.io import check_output_folder, write_csv, write_text
from lewm_bench.io import save_figure as _save
from lewm_bench.locks import lock_output
from lewm_bench.paper import paper_plan_time, paper_plan_time_agents, paper_success
from lewm_bench.per_task import load_evaluations, oracle_table, training_data_table
from lewm_bench.registry import AgentInfo, default_colour, get_agent

REQUIRED_COLUMNS = ("env", "agent", "profile", "seed", "episodes", "success_rate", "plan_time_median_s",
                    "tokens_per_frame", "encoder_tokens_per_frame", "straightness", "params_trainable",
                    "params_frozen", "train_time_s", "eval_time_s", "device", "commit")
"""The summary.csv columns the report reads (a subset of SPEC §11's)."""
RESULT_COLUMNS = ["profile", "env", "agent", "seeds", "episodes", "success_rate", "success_ci_low", "success_ci_high",
                  "success_std", "paper_success", "plan_time_median_s", "timed_call", "paper_plan_time_s",
                  "tokens_per_frame", "encoder_tokens_per_frame", "params_trainable", "params_frozen", "straightness",
                  "train_time_s", "eval_time_s", "device", "commit"]
"""Columns of ``results.csv``; ``encoder`` follows ``agent`` when the summary has that column."""

_ENV_PALETTE = ("tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink", "tab:gray")  # distinct from agents'
_STRINGS = {c: str for c in ("env", "agent", "profile", "device", "commit", "encoder")}


@dataclass(frozen=True)
class Report:
    out_dir: Path
    """Folder the files were written to."""
    table: pd.DataFrame
    """The contents of ``results.csv``: one row per (profile, env, agent)."""
    files: list[Path]
    """Every file written: results.csv, results.md, success.png, planning_time.png, straightness.png, and
    oracle_tasks.csv / training_data.csv where there are rows (:mod:`lewm_bench.per_task`)."""


def build_report(root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = "runs",
                 out: str | os.PathLike[str] | None = None, profile: str | None = None,
                 exclude_variants: Sequence[str] = ()) -> Report:
    """Write the results table, its Markdown and the three plots for the runs under ``root``.

    Args:
        root: the folder ``lewm-bench eval`` / ``run`` wrote to (holds ``summary.csv`` and ``train/``), or several
            such folders, pooled into one report.
        out: output folder (default ``ROOT/report``; required with several roots); files in it are replaced
            atomically.
        profile: report only this profile (default: every profile in the summary, one section each).
        exclude_variants: leave out the evaluations whose ``variant`` contains any of these texts (settings studied
            beside the main protocol, e.g. ``"trained on"`` for the data-quality runs); the rest of an agent's rows
            then keep its plain name.

    Raises:
        LewmBenchError: no summary.csv, one without the ``REQUIRED_COLUMNS`` or rows, an unknown profile, the same
            evaluation in two roots, several roots without ``out``, or nothing left after ``exclude_variants``.
    """
    roots = [Path(root)] if isinstance(root, (str, os.PathLike)) else [Path(r) for r in root]
    if not roots:
        raise LewmBenchError("no root given: expected at least one folder holding summary.csv (--root)")
    if out is None and len(roots) > 1:
        raise LewmBenchError(f"{len(roots)} roots and no output folder: pass --out for the pooled report (it is "
                             "not written into any one of the roots)")
    out_dir = Path(out) if out is not None else roots[0] / "report"
    summary = load_summaries(roots, exclude_variants)
    if profile is not None:
        if profile not in set(summary.profile):
            raise LewmBenchError(f"no results for profile {profile!r} in {_summary_paths(roots)}; "
                                 f"profiles there: {', '.join(sorted(set(summary.profile)))}")
        summary = summary[summary.profile == profile]
    table = results_table(summary)
    profiles = sorted(set(table.profile))
    logs = pd.concat([load_training_logs(r) for r in roots], ignore_index=True)
    logs = logs[logs.profile.isin(profiles)]
    files = [out_dir / name for name in ("results.csv", "results.md", "success.png", "planning_time.png",
                                         "straightness.png")]
    evaluations = [e for r in roots for e in load_evaluations(r) if e.result["profile"] in profiles
                   and not _excluded(e.result.get("variant"), exclude_variants)]
    per_task = {"oracle_tasks.csv": oracle_table(evaluations), "training_data.csv": training_data_table(evaluations)}
    per_task = {name: _in_table_order(t) for name, t in per_task.items() if not t.empty}
    files += [out_dir / name for name in per_task]
    check_output_folder(out_dir)
    with lock_output(out_dir):  # one writer per report folder
        write_csv(files[0], table)
        for name, t in per_task.items():
            write_csv(out_dir / name, t)
        write_text(files[1], results_markdown(table) + per_task_markdown(per_task) + analysis_markdown(roots, profiles))
        _save(_plot_success(table, profiles), files[2])
        _save(_plot_planning_time(table, profiles), files[3])
        _save(_plot_straightness(logs, profiles, [r / "train" for r in roots]), files[4])
    return Report(out_dir, table, files)


def load_summary(root: str | os.PathLike[str]) -> pd.DataFrame:
    """``ROOT/summary.csv``, checked for the columns the report needs."""
    return load_summaries([root])


def _excluded(variant: str | None, texts: Sequence[str]) -> bool:
    """Whether an evaluation's ``variant`` contains one of ``texts`` (``--exclude-variant``)."""
    return isinstance(variant, str) and any(text in variant for text in texts)


def load_summaries(roots: Sequence[str | os.PathLike[str]], exclude_variants: Sequence[str] = ()) -> pd.DataFrame:
    """The ``summary.csv`` of every root, checked and pooled (column ``root`` says where a row came from), less the
    rows whose ``variant`` contains one of ``exclude_variants``.

    Raises:
        LewmBenchError: a summary is missing, unreadable or empty, the same evaluation (profile, env, agent, seed,
            config) is in two roots — pooling it would count its episodes twice — or no row is left.
    """
    summary = pd.concat([_read_summary(Path(r)).assign(root=str(r)) for r in roots], ignore_index=True)
    summary = summary[~summary.variant.map(lambda v: _excluded(v, exclude_variants))]
    if summary.empty:
        raise LewmBenchError(f"no evaluation left in {_summary_paths([Path(r) for r in roots])} after leaving out "
                             f"the variants containing {', '.join(map(repr, exclude_variants))}; drop an "
                             "--exclude-variant")
    key = ["profile", "env", "agent", "seed", "config_id"]
    per_key = summary.groupby(key).root.nunique()
    if (per_key > 1).any():
        (profile, env, agent, seed, _), = per_key[per_key > 1].index[:1]
        where = sorted(set(summary.root[(summary.env == env) & (summary.agent == agent) & (summary.seed == seed)
                                        & (summary.profile == profile)]))
        raise LewmBenchError(f"the evaluation of {agent} on {env} (profile {profile}, seed {seed}) is in more than "
                             f"one root: {', '.join(where)}; pass only one of these folders (or rerun the other "
                             "with another seed)")
    return _separate_variants(summary)


def _summary_paths(roots: Sequence[Path]) -> str:
    return ", ".join(str(r / "summary.csv") for r in roots)


def _read_summary(root: Path) -> pd.DataFrame:
    path = root / "summary.csv"
    if not path.is_file():
        raise LewmBenchError(f"no evaluation results: expected {path} (one row per finished evaluation); create it "
                             f"with `lewm-bench eval --env ENV --agent AGENT` or `lewm-bench run --suite SUITE`, "
                             f"or pass the folder they wrote to as --root")
    try:
        summary = pd.read_csv(path, dtype=_STRINGS)
    except pd.errors.EmptyDataError:
        summary = pd.DataFrame()
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise LewmBenchError(f"{path}: not a readable CSV table ({exc.__class__.__name__}); expected the summary "
                             "lewm-bench eval writes: move it away and rerun the evaluations (or the suite)") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in summary.columns]
    if missing:
        raise LewmBenchError(f"{path} lacks the columns {', '.join(missing)}; expected at least "
                             f"{', '.join(REQUIRED_COLUMNS)} (rerun the evaluations to rewrite it)")
    if summary.empty:
        raise LewmBenchError(f"{path} has no rows; run `lewm-bench eval --env ENV --agent AGENT` first")
    for column in ("config_id", "variant"):  # summaries written before evaluations had an identity
        if column not in summary:
            summary[column] = ""
    summary[["config_id", "variant"]] = summary[["config_id", "variant"]].fillna("")
    return summary


def _separate_variants(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of one (profile, env, agent) evaluated with different settings are never pooled: when there are
    several, each is labelled ``AGENT [variant]`` and becomes its own row of the tables (with the start of its
    ``config_id`` where two settings have the same words, e.g. runs that differ in a training hyperparameter)."""
    mixed = summary.groupby(["profile", "env", "agent"]).config_id.transform("nunique") > 1
    same_words = summary.groupby(["profile", "env", "agent", "variant"]).config_id.transform("nunique") > 1
    label = summary.variant.where(~same_words, summary.variant + ", config " + summary.config_id.str[:8])
    summary.loc[mixed, "agent"] = summary.loc[mixed, "agent"] + " [" + label[mixed] + "]"
    return summary


def results_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (profile, env, agent) of ``summary``, aggregated over seeds as the module docstring says."""
    rows = []
    for (profile, env, agent), g in summary.groupby(["profile", "env", "agent"]):
        episodes = int(g.episodes.sum())
        successes = int(np.round(g.success_rate * g.episodes).sum())
        low, high = wilson_interval(successes, episodes)
        row: dict[str, Any] = {
            "profile": profile, "env": env, "agent": agent, "seeds": len(g), "episodes": episodes,
            "success_rate": g.success_rate.mean(), "success_ci_low": low, "success_ci_high": high,
            "success_std": g.success_rate.std(ddof=1), "paper_success": _nan(paper_success(env, agent)),
            "paper_plan_time_s": _nan(paper_plan_time(agent)), "device": _join(g.device),
            "commit": _join(g.commit)}
        for c in ("plan_time_median_s", "tokens_per_frame", "encoder_tokens_per_frame", "params_trainable",
                  "params_frozen"):
            row[c] = g[c].median()
        for c in ("straightness", "train_time_s", "eval_time_s"):
            row[c] = g[c].mean()
        if "encoder" in g:
            row["encoder"] = _join(g.encoder)
        # summaries written before policies were timed hold planning calls only
        row["timed_call"] = _join(g.timed_call) if "timed_call" in g else "planning call"
        rows.append(row)
    columns = RESULT_COLUMNS[:3] + ["encoder"] * ("encoder" in summary) + RESULT_COLUMNS[3:]
    table = pd.DataFrame(rows, columns=columns)
    params = ["params_trainable", "params_frozen"]
    table[params] = table[params].astype(float).round().astype("Int64")  # integers; <NA> where not reported
    return _in_table_order(table)


def results_markdown(table: pd.DataFrame) -> str:
    """Per profile: success per env × agent (ours beside the paper) and planning time, tokens and parameters."""
    parts = ["# Results", "", "Generated by `lewm-bench report` from `summary.csv`. Success: mean over seeds, in "
             "brackets the Wilson 95% interval of all episodes pooled; paper: Fig. 6 (SPEC §8). Time per call: median "
             "per call of one episode — a planning call for a world model, one decision (a policy's action block, "
             "no planner) for a policy; paper: Fig. 3 planning calls, one NVIDIA L40S (PLDM has no paper figure)."]
    for profile, t in table.groupby("profile"):
        envs, agents = _envs(t.env), _agents(t.agent)
        cells = {(r.env, r.agent): r for r in t.itertuples()}
        success = [[_env_name(e)] + [c for a in agents for c in (
            _success_cell(cells.get((e, a))), _pct(paper_success(e, a)))] for e in envs]
        header = ["env"] + [f"{_agent_name(a)} ({kind})" for a in agents for kind in ("ours", "paper")]
        has_encoder = "encoder" in t
        speed = [[_agent_name(r.agent), _env_name(r.env), _secs(r.plan_time_median_s), r.timed_call or "—",
                  _secs(paper_plan_time(r.agent)), _num(r.tokens_per_frame), _num(r.encoder_tokens_per_frame),
                  _num(r.params_trainable), _num(r.params_frozen)] + ([r.encoder or "—"] if has_encoder else [])
                 for r in t.sort_values("agent", key=lambda a: a.map(_rank(_agents(a))),
                                        kind="stable").itertuples()]
        speed_header = ["agent", "env", "time / call (ours)", "call (ours)", "planning / call (paper)",
                        "predictor tokens / frame",
                        "encoder tokens / frame", "trainable params", "frozen params"] + ["encoder"] * has_encoder
        devices, commits = (_join(t[c].str.split("; ").explode()) or "unknown" for c in ("device", "commit"))
        parts += ["", f"## Profile `{profile}`", "", markdown_table(pd.DataFrame(success, columns=header)), "",
                  markdown_table(pd.DataFrame(speed, columns=speed_header)), "",
                  f"Profile `{profile}`; device(s): {devices}; commit(s): {commits}."]
    return "\n".join(parts) + "\n"


_PER_TASK_SECTIONS = {
    "oracle_tasks.csv": ("Tasks the oracle fails",
                         "The oracle plans with the protocol's CEM budget over the true simulator: a task it fails is "
                         "not a test of a world model at this planner size. Every evaluation of the same start/goal "
                         "pairs (matched on episode, start and goal in `episodes.csv`), on the tasks the oracle solves "
                         "and on those it fails; counts with the Wilson 95% interval."),
    "training_data.csv": ("Training data",
                          "The same agent trained on different datasets (collector and dataset identity) and "
                          "evaluated on the same start/goal pairs, beside the oracle on them."),
}


def per_task_markdown(per_task: dict[str, pd.DataFrame]) -> str:
    """The sections of the per-task tables (:mod:`lewm_bench.per_task`) that have rows."""
    parts = []
    for name, t in per_task.items():
        title, text = _PER_TASK_SECTIONS[name]
        shown = t.assign(env=t.env.map(_env_name), agent=t.agent.map(_agent_name))
        parts += ["", f"## {title}", "", f"{text} Table: `{name}`.", "", markdown_table(shown)]
    return "\n".join(parts) + ("\n" if parts else "")


def analysis_markdown(roots: Sequence[str | os.PathLike[str]], profiles: list[str]) -> str:
    """The violation-of-expectation, probing and diagnostics tables of every ``ROOT/analysis/`` (empty when there
    are none)."""
    parts = []
    voe, probe, diagnostics = (_analysis_table(roots, name) for name in ("voe.csv", "probe.csv", "diagnostics.csv"))
    if voe is not None:
        voe = voe[voe.profile.isin(profiles)]
        # rows written before the colour-change mode was recorded have no perturbation: use the variant
        voe = voe.assign(perturbation=voe.get("perturbation", voe.variant).fillna(voe.variant))
        rows = [[r.profile, _env_name(r.env), _agent_name(r.agent), r.seed, r.perturbation, r.n, r.step,
                 f"{r.surprise_perturbed:.4g}", f"{r.surprise_unperturbed:.4g}", f"{r.t_statistic:.2f}",
                 f"{r.p_value:.2g}", f"{r.cohens_d:.2f}"] for r in voe.itertuples()]
        parts += ["", "## Violation of expectation", "",
                  "Surprise (prediction MSE of the next embedding) at the perturbation step, perturbed vs the same "
                  "trajectories unperturbed; paired t-test. Paper: teleport significant (p < 0.01) in all three "
                  "envs for LeWM, colour change weaker. Plots: `analysis/ENV/RUN/voe.png`.", "",
                  markdown_table(pd.DataFrame(rows, columns=["profile", "env", "agent", "seed", "perturbation",
                                                             "trajectories", "step", "surprise (perturbed)",
                                                             "surprise (unperturbed)", "t", "p", "Cohen's d"]))]
    if probe is not None:
        agents = [_agent_name(a) for a in _agents(probe.agent)]
        probe = probe[probe.profile.isin(profiles)]
        probe = probe.assign(cell=[f"r {r.pearson_r:.3f} / MSE {r.mse:.3f}" for r in probe.itertuples()],
                             agent=probe.agent.map(_agent_name))
        wide = probe.pivot_table(index=["profile", "env", "quantity", "probe"], columns="agent", values="cell",
                                 aggfunc="first", sort=False).reset_index()
        wide["env"] = wide.env.map(lambda e: _env_name(e))
        wide = wide[["profile", "env", "quantity", "probe"] + [a for a in agents if a in wide]]
        parts += ["", "## Probing", "",
                  "Probes trained on frozen embeddings of training-split frames, scored on held-out episodes; MSE in "
                  "standardised units (1 = predicting the mean), Pearson r averaged over the quantity's components. "
                  "Paper (PushT, LeWM, linear): agent r 0.974, block r 0.986, angle r 0.902.", "",
                  markdown_table(wide)]
    if diagnostics is not None:
        parts += ["", "## Model diagnostics", "",
                  "Open-loop prediction error over the planning horizon on held-out clips, relative to the distance "
                  "between random held-out frames (1 = no better than a random frame), beside the persistence "
                  "baseline (the last seen frame's embedding); and, on the first evaluation tasks, how the true "
                  "simulator ranks the plan one CEM call returns among that call's final candidates (0 = the best "
                  "of them, 0.5 = a random one) with the Spearman correlation of model and simulator costs over "
                  "the candidates. Plots: `analysis/ENV/RUN/diagnostics.png`.", "",
                  markdown_table(diagnostics_table(diagnostics, profiles))]
    return "\n".join(parts) + ("\n" if parts else "")


def _analysis_table(roots: Sequence[str | os.PathLike[str]], name: str) -> pd.DataFrame | None:
    """``ROOT/analysis/NAME`` of every root that has one, pooled; None where none has."""
    paths = [Path(r) / "analysis" / name for r in roots if (Path(r) / "analysis" / name).exists()]
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True) if paths else None


def diagnostics_table(d: pd.DataFrame, profiles: list[str]) -> pd.DataFrame:
    """One row per (profile, env, agent, seed) from the long diagnostics table (:func:`diagnostics.summarise`)."""
    d = d[d.profile.isin(profiles)]
    rows = []
    for (profile, env, agent, seed), g in d.groupby(["profile", "env", "agent", "seed"], sort=False):
        value = {(q, int(s)): v for q, s, v in zip(g.quantity, g.step, g.value)}
        last = int(g[g.quantity == "relative"].step.max())
        rows.append([profile, _env_name(env), _agent_name(agent), seed,
                     f"{value[('relative', 1)]:.3g} / {value[('persistence_relative', 1)]:.3g}",
                     f"{value[('relative', last)]:.3g} / {value[('persistence_relative', last)]:.3g} (step {last})",
                     f"{value[('rank_fraction_median', 0)]:.2f}", f"{value[('spearman_mean', 0)]:.2f}",
                     int(value[("tasks", 0)])])
    return pd.DataFrame(rows, columns=["profile", "env", "agent", "seed", "open-loop error, step 1 (model / "
                                       "persistence)", "open-loop error, last step", "executed plan's rank (median)",
                                       "Spearman (mean)", "tasks"])


def markdown_table(df: pd.DataFrame) -> str:
    """``df`` as a GitHub Markdown table (no index); missing values show as "—", pipes are escaped."""
    def cell(v: Any) -> str:
        return "—" if pd.isna(v) else str(v).replace("|", r"\|")
    lines = ["| " + " | ".join(cell(v) for v in row) + " |" for row in [list(df.columns), *df.values.tolist()]]
    return "\n".join([lines[0], "|" + "---|" * len(df.columns), *lines[1:]])


def load_training_logs(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Every ``ROOT/train/ENV/RUN/log.csv`` with its config: columns run, env, agent, profile, seed, step, straightness.

    Only finished runs (with ``summary.json``) are read; runs without a readable ``config.json`` or without the
    step / straightness columns are skipped with a warning.
    """
    frames = []
    for log in sorted(Path(root, "train").glob("*/*/log.csv")):
        if not log.with_name("summary.json").exists():
            continue  # still training (or stopped): not a result yet
        try:
            config = json.loads(log.with_name("config.json").read_text())
            df = pd.read_csv(log, usecols=["step", "straightness"])
            df = df.assign(run=log.parent.name, env=str(config["env"]), agent=str(config["agent"]),
                           profile=str(config["profile"]), seed=config.get("seed"))
        except (OSError, ValueError, KeyError) as err:  # JSON and CSV parse errors are ValueErrors
            warnings.warn(f"skipping training log {log}: {err!r}", stacklevel=2)
            continue
        frames.append(df.dropna(subset=["step", "straightness"]))
    columns = ["run", "env", "agent", "profile", "seed", "step", "straightness"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _plot_success(table: pd.DataFrame, profiles: list[str]):
    fig, axes = _figure(len(profiles), 1, (9, 3.6))
    for ax, profile in zip(axes[:, 0], profiles):
        t = table[table.profile == profile]
        envs, agents = _envs(t.env), _agents(t.agent)
        width, shown = 0.8 / len(agents), set()
        for i, agent in enumerate(agents):
            for j, env in enumerate(envs):
                x, r = j + (i - (len(agents) - 1) / 2) * width, t[(t.env == env) & (t.agent == agent)]
                if len(r):
                    r = r.iloc[0]
                    y, lo, hi = 100 * r.success_rate, 100 * r.success_ci_low, 100 * r.success_ci_high
                    ax.bar(x, y, width * 0.9, color=_colour(agent), label=_label(_agent_name(agent), shown))
                    ax.errorbar(x, y, yerr=[[max(y - lo, 0)], [max(hi - y, 0)]], fmt="none", ecolor="black",
                                capsize=3, lw=1, label=_label("ours (95% CI)", shown))
                    ax.text(x, hi + 1.5, f"{y:.0f}", ha="center", va="bottom", fontsize=7)
                if (paper := paper_success(env, agent)) is not None:
                    ax.plot(x, 100 * paper, "D", color="black", mfc="white", ms=6, zorder=3,
                            label=_label("paper (Fig. 6)", shown))
        ax.set_xticks(range(len(envs)), [_env_name(e) for e in envs])
        ax.set(ylim=(0, 112), ylabel="success rate (%)", title=f"Planning success, profile {profile}\nours (bars: mean "
               "over seeds, whiskers: Wilson 95% CI) vs paper (◆, Fig. 6)")
        entries = sorted(  # agents first
            zip(*ax.get_legend_handles_labels()), key=lambda e: e[1] in ("ours (95% CI)", "paper (Fig. 6)"))
        ax.legend(*zip(*entries), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


def _plot_planning_time(table: pd.DataFrame, profiles: list[str]):
    fig, axes = _figure(len(profiles), 1, (9, 3.6))
    for ax, profile in zip(axes[:, 0], profiles):
        t = table[(table.profile == profile) & table.plan_time_median_s.notna()]
        envs = _envs(t.env)
        agents = _agents(set(t.agent) | set(paper_plan_time_agents()))
        width, shown = 0.8 / (len(envs) + 1), set()
        for i, agent in enumerate(agents):
            ours = t[t.agent == agent].set_index("env").plan_time_median_s
            bars = [(f"{_env_name(e)} (ours)", _env_colour(e), ours.get(e, np.nan))
                    for e in envs] + [("paper, 1× L40S", "white", _nan(paper_plan_time(agent)))]
            for k, (name, colour, y) in enumerate(bars):
                if not np.isnan(y):
                    x = i + (k - len(envs) / 2) * width
                    hatch = "//" if colour == "white" else None
                    ax.bar(x, y, width * 0.9, color=colour, edgecolor="black", hatch=hatch, label=_label(name, shown))
                    ax.text(x, y * 1.15, f"{y:.3g} s", ha="center", va="bottom", fontsize=7)
        devices = _join(t.device.str.split("; ").explode()) or "unknown device"
        decisions = set(t.agent[t.timed_call.fillna("").str.contains("decision")]) if "timed_call" in t else set()
        ax.set_xticks(range(len(agents)), [_agent_name(a) + ("\n(decision)" if a in decisions else "") for a in agents])
        ax.set(yscale="log", ylabel="seconds per planning call\nor policy decision (log)",
               title=f"Time per planning call or policy decision (one episode), profile {profile}\n"
                     f"ours on {devices} vs paper (hatched)")
        ax.set_ylim(top=ax.get_ylim()[1] * 3)
        entries = sorted(zip(*ax.get_legend_handles_labels()), key=lambda e: e[1].startswith("paper"))
        ax.legend(*zip(*entries), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


def _plot_straightness(logs: pd.DataFrame, profiles: list[str], train_dirs: list[Path]):
    envs, profiles = _envs(logs.env), [p for p in profiles if p in set(logs.profile)]
    if not envs:
        fig, axes = _figure(1, 1, (6, 3))
        axes[0, 0].text(0.5, 0.5, f"no training logs under {', '.join(map(str, train_dirs))}", ha="center",
                        va="center")
        axes[0, 0].set_axis_off()
        return fig
    fig, axes = _figure(len(profiles), len(envs), (4.5, 3.4))
    fig.suptitle("Temporal straightness of encoder embeddings during training (held-out clips; higher = straighter)")
    for row, profile in zip(axes, profiles):
        for ax, env in zip(row, envs):
            t, shown = logs[(logs.profile == profile) & (logs.env == env)], set()
            rank = _rank(_agents(t.agent))
            for run in sorted(set(t.run), key=lambda name: (rank[t.agent[t.run == name].iloc[0]], name)):
                r = t[t.run == run].sort_values("step")
                agent, seed = r.agent.iloc[0], r.seed.iloc[0]
                plain = run == f"{agent}-{profile}-seed{seed}"  # a suffixed folder is a variant (e.g. an ablation)
                ax.plot(r.step, r.straightness, "-" if plain else "--", color=_colour(agent), marker=".",
                        label=_label(_agent_name(agent) if plain else f"{_agent_name(agent)} ({run})", shown))
            if t.empty:
                ax.text(0.5, 0.5, "no training logs", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.legend(fontsize=7)
            ax.set(title=f"{_env_name(env)}, profile {profile}", xlabel="optimiser step",
                   ylabel="straightness (mean cos)")
    return fig


def _figure(rows: int, cols: int, panel: tuple[float, float]):
    """A pyplot-free figure (no global state, no GUI backend) and its axes as a 2-D array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _in_table_order(t: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by profile, env (registration order), agent (the paper's column order), then seed where there is
    one; stable otherwise."""
    ranks = {"_env": t.env.map(_rank(_envs(t.env))), "_agent": t.agent.map(_rank(_agents(t.agent)))}
    keys = ["profile", "_env", "_agent"] + ["seed"] * ("seed" in t)
    return t.assign(**ranks).sort_values(keys, kind="stable").drop(columns=list(ranks)).reset_index(drop=True)


def _envs(values: Iterable[str]) -> list[str]:
    """Distinct env names: registered ones in registration order, then unknown ones sorted."""
    seen, known = set(values), list(env_names())
    return [e for e in known if e in seen] + sorted(seen - set(known))


def _agents(values: Iterable[str]) -> list[str]:
    """Distinct agent names in table order (each agent's ``order``; unknown ones at 100, by name)."""
    return sorted(set(values), key=lambda a: (_agent(a).order if _agent(a) else 100, a))


def _rank(ordered: list[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(ordered)}


def _agent(name: str) -> AgentInfo | None:
    """The registered agent (of ``NAME [variant]`` too), or None for a name no longer registered."""
    try:
        return get_agent(name.split(" [")[0])
    except LewmBenchError:
        return None


def _env_name(env: str) -> str:
    try:
        return env_spec(env).display_name
    except LewmBenchError:
        return env


def _env_colour(env: str) -> str:
    known = list(env_names())
    return _ENV_PALETTE[known.index(env) % len(_ENV_PALETTE)] if env in known else _ENV_PALETTE[-1]


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def _join(values: pd.Series) -> str:
    return "; ".join(sorted({str(v) for v in values.dropna() if str(v)}))


def _label(name: str, shown: set[str]) -> str:
    """``name`` the first time in a panel, then matplotlib's "no legend entry" label."""
    if name in shown:
        return "_nolegend_"
    shown.add(name)
    return name


def _agent_name(agent: str) -> str:
    info = _agent(agent)
    variant = agent[len(agent.split(" [")[0]):]
    return info.display_name + variant if info else agent


def _colour(agent: str) -> str:
    info = _agent(agent)
    return info.colour if info else default_colour(agent)


def _pct(x: float | None) -> str:
    return "—" if pd.isna(x) else f"{100 * x:.0f}%"


def _secs(x: float | None) -> str:
    return "—" if pd.isna(x) else f"{x:.3g} s"


def _num(x: float) -> str:
    return "—" if pd.isna(x) else f"{x / 1e6:.2f} M" if x >= 1e5 else f"{x:g}"


def _success_cell(r: Any) -> str:
    if r is None:
        return "—"
    spread = f" ({r.seeds} seeds, sd {100 * r.success_std:.1f})" if r.seeds > 1 else ""
    return f"{_pct(r.success_rate)} [{_pct(r.success_ci_low)}, {_pct(r.success_ci_high)}]{spread}"
