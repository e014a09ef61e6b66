"""The ``lewm-bench`` command line. Thin: parse options, call the library, print.

Every command that sizes its work takes ``--profile`` (``paper``, ``cpu``, ``smoke``; default
``paper`` with CUDA and ``cpu`` otherwise) and prints the profile it uses. User errors end with a
one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from pathlib import Path

from lewm_bench import __version__
from lewm_bench.errors import LewmBenchError

DATA_ROOT = Path("runs/data")


# ------------------------------------------------------------------------- option validators
def _number(kind: type, minimum: float, strict: bool, what: str):
    """An argparse ``type=``: a finite ``kind`` at least (``strict``: above) ``minimum``, else a one-line error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, 1, False, "a whole number >= 1")
"""``type=`` of counts and sizes: 0 is rejected (it never means "the profile's value")."""
non_negative_int = _number(int, 0, False, "a whole number >= 0")
"""``type=`` of seeds and of counts where 0 means none."""
positive_float = _number(float, 0.0, True, "a finite number > 0")
non_negative_float = _number(float, 0.0, False, "a finite number >= 0")


def fraction(text: str) -> float:
    """``type=`` of fractions: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1); got {text!r}")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """``type=`` of ``--seeds``: a comma list of distinct whole numbers >= 0."""
    parts = [p.strip() for p in text.split(",")]
    try:
        seeds = tuple(non_negative_int(p) for p in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a comma list of whole numbers >= 0 (e.g. 0,1,2); got {text!r}") \
            from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds; got {text!r}")
    return seeds


def name_list(text: str) -> tuple[str, ...]:
    """``type=`` of ``--agents``: a comma list of non-empty names."""
    names = tuple(v.strip() for v in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected names separated by commas; got {text!r} (an empty name)")
    return names


def _given(value, default):
    """An option's value, or the profile's ``default`` when the option was not given (never when it is 0)."""
    return default if value is None else value


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        command = self.prog.partition(" ")[2]
        self.exit(2, f"lewm-bench: error: {command + ': ' if command else ''}{message}; see: {self.prog} --help\n")


def _profile(args: argparse.Namespace):
    from lewm_bench.profiles import get_profile

    profile = get_profile(args.profile)
    print(f"profile: {profile.name}{'' if args.profile else ' (default for this machine)'}", file=sys.stderr)
    return profile


def _env_names(value: str) -> list[str]:
    from lewm_bench.envs import env_names, env_spec

    names = [v.strip() for v in value.split(",")]
    if value == "all":
        return list(env_names())
    if not all(names):
        raise LewmBenchError(f"empty environment name in {value!r}; give names separated by commas, or all")
    return [env_spec(v).name for v in names]


# ---------------------------------------------------------------------------------- commands
def cmd_envs(args: argparse.Namespace) -> None:
    from lewm_bench.envs import ENVS

    for info in ENVS.values():
        print(f"{info.name:9s} {info.gym_id:22s} obs uint8 (S, S, 3)  action [-1, 1]^{info.action_dim}  "
              f"state {info.state_dim}-d  success: {info.success}")


def cmd_collect(args: argparse.Namespace) -> None:
    from lewm_bench.collect.policies import make_collector
    from lewm_bench.collect.runner import CollectConfig, collect
    from lewm_bench.data.dataset import open_dataset

    profile = _profile(args)
    envs = _env_names(args.env)
    if args.out is not None and len(envs) > 1:
        raise ValueError("--out names one file: use it with a single --env")
    if args.collector is not None and len(envs) > 1:
        raise ValueError("--collector applies to one env: use it with a single --env")
    for env in envs:
        sizes = profile.data_for(env)
        # the profile's collector parameters (e.g. the SAC expert's budget) go with the env's default collector
        collector = make_collector(env, args.collector, **({} if args.collector else sizes.collector_params))
        cfg = CollectConfig(env=env, collector=collector,
                            episodes=_given(args.episodes, sizes.episodes),
                            max_steps=_given(args.max_steps, sizes.max_steps),
                            image_size=_given(args.image_size, sizes.image_size), env_kwargs=dict(sizes.env_kwargs),
                            seed=args.seed, held_out_fraction=args.held_out_fraction)
        path = collect(cfg, args.out or cfg.default_path(args.data_root), workers=args.workers, force=args.force,
                       progress=not args.no_progress)
        with open_dataset(path) as ds:
            s = ds.summary()
        print(f"{path}: {s['episodes']} episodes, {s['frames']} frames, mean length "
              f"{s['episode_length_mean']:.1f}, {s['held_out_episodes']} held out, {s['size_mb']} MB")


def cmd_datasets(args: argparse.Namespace) -> None:
    from lewm_bench.data.dataset import open_dataset

    paths = [Path(p) for p in args.paths] or sorted(Path(args.data_root).glob("*/*.h5"))
    if not paths:
        print(f"no datasets under {args.data_root}; create them with: lewm-bench collect --env all")
        return
    if args.verify:
        _verify_datasets(paths, progress=not args.no_progress)
        return
    summaries = []
    for p in paths:
        with open_dataset(p) as ds:
            summaries.append(ds.summary())
    if args.json:
        print(json.dumps(summaries, indent=1))
        return
    for s in summaries:
        made_with = f" with {s['collector_provenance']}" if s["collector_provenance"] else ""
        print(f"{s['path']}\n  env {s['env']} {s['env_kwargs']}  collector {s['collector']} {s['collector_params']}"
              f"{made_with}\n"
              f"  {s['episodes']} episodes ({s['held_out_episodes']} held out), {s['frames']} frames at "
              f"{s['image_size']} px, length mean {s['episode_length_mean']:.1f} "
              f"[{s['episode_length_min']}, {s['episode_length_max']}], {s['size_mb']} MB\n"
              f"  action mean {s['action_mean']} std {s['action_std']}  seed {s['seed']}  "
              f"schema {s['schema_version']}  lewm-bench {s['lewm_bench_version']}  created {s['created']}")


def _verify_datasets(paths: list[Path], progress: bool) -> None:
    """``datasets --verify``: read every chunk of each file; one line per file or per problem."""
    from lewm_bench.data.dataset import verify_dataset

    damaged = []
    for path in paths:
        problems = verify_dataset(path, progress=progress)
        if not problems:
            print(f"{path}: OK", flush=True)
            continue
        damaged.append(path)
        for problem in problems:
            # a whole-file problem's message already starts with the path
            print(str(problem) if problem.episode is None else f"{path}: {problem}", flush=True)
    if damaged:
        raise LewmBenchError(f"{len(damaged)} of {len(paths)} dataset files damaged (listed above); delete each and "
                             "recollect it with the same lewm-bench collect command")


def cmd_train(args: argparse.Namespace) -> None:
    import dataclasses

    from lewm_bench.registry import get_agent
    from lewm_bench.training.trainer import train

    profile = _profile(args)
    info = get_agent(args.agent)
    model_config = info.config_for(profile.name) if info.trainable else None
    for option, value in (("sigreg_weight", args.sigreg_weight), ("encoder_weights", args.encoder_weights)):
        if value is None:
            continue
        used = model_config is not None and any(f.name == option for f in dataclasses.fields(model_config)) and (
            option != "sigreg_weight" or "sigreg" in info.cls.loss_terms)
        if not used:
            raise ValueError(f"--{option.replace('_', '-')} does not apply to agent {args.agent!r} (its config or "
                             "loss has no such setting)")
        model_config = dataclasses.replace(model_config, **{option: value})
    overrides = {k: getattr(args, k) for k in ("epochs", "steps_per_epoch", "batch_size", "lr")
                 if getattr(args, k) is not None}
    if overrides and info.learns_online:
        raise ValueError(f"--{next(iter(overrides)).replace('_', '-')} does not apply to agent {args.agent!r}: it "
                         "learns online, for the env-step budget of its config")
    tcfg = dataclasses.replace(info.train_config_for(profile), **overrides)
    result = train(args.env, profile, agent=args.agent, data=args.data, out=args.out, seed=args.seed,
                   resume=args.resume, force=args.force, progress=not args.no_progress, model_config=model_config,
                   train_config=tcfg, data_root=args.data_root, logger=args.logger)
    if not result.summary:  # a non-zero rank under torchrun: rank 0 reports
        return
    state = "trained" if result.finished else "already finished (pass --force to retrain)"
    if info.learns_online:
        print(f"{result.run_dir}: {state}; {result.summary['online_env_steps']} env steps online, "
              f"{result.summary['train_time_s']:.0f} s")
        return
    final = result.summary["final"]
    held = "held-out action error" if info.kind == "policy" else "held-out pred loss"
    print(f"{result.run_dir}: {state}; {result.summary['epochs']} epochs, {result.summary['steps']} steps, "
          f"{result.summary['train_time_s']:.0f} s; {held} {final['val_pred_loss']:.4f}, embedding std "
          f"{final['emb_std_mean']:.3f}, effective rank {final['effective_rank']:.1f}, straightness "
          f"{final['straightness']:.3f}")


def cmd_eval(args: argparse.Namespace) -> None:
    import dataclasses

    from lewm_bench.evaluation.protocol import PROTOCOLS
    from lewm_bench.evaluation.run import evaluate

    profile = _profile(args)
    protocol = dataclasses.replace(PROTOCOLS[args.protocol], episodes=_given(args.episodes, profile.eval_episodes),
                                   split=args.split)
    cem = profile.cem
    if args.iterations is not None or args.candidates is not None:
        cem = dataclasses.replace(cem, iterations=_given(args.iterations, cem.iterations),
                                  candidates=_given(args.candidates, cem.candidates))
    result = evaluate(args.env, args.agent, profile, checkpoint=args.checkpoint, data=args.data, out=args.out,
                      seed=args.seed, protocol=protocol, context=args.context, cem=cem, root=args.root,
                      timing_calls=args.timing_calls, batch=args.batch, planner_name=args.planner,
                      logger=args.logger)
    r = result.record
    timing = "" if r.plan_time_median_s is None else (
        f"; planning {r.plan_time_median_s:.3f} s per call one episode at a time (p10 {r.plan_time_p10_s:.3f}, "
        f"p90 {r.plan_time_p90_s:.3f}), {r.plan_time_batched_median_s:.2f} s per batched call of "
        f"{r.batched_episodes_per_call}") if r.timed_call == "planning call" else (
        f"; {1e3 * r.plan_time_median_s:.2f} ms per decision (p10 {1e3 * r.plan_time_p10_s:.2f}, p90 "
        f"{1e3 * r.plan_time_p90_s:.2f}), " + ("CEM in the simulator" if "simulator" in r.inputs else "no planner"))
    print(f"{result.run_dir}: {r.env} {r.agent} success {r.success_rate:.0%} "
          f"[{r.success_ci_low:.0%}, {r.success_ci_high:.0%}] over {r.episodes} episodes{timing}")


def cmd_import(args: argparse.Namespace) -> None:
    if args.what == "dataset":
        from lewm_bench.data.importer import import_dataset

        d = import_dataset(args.path, out=args.out, env=args.env, held_out_fraction=args.held_out_fraction,
                           seed=args.seed, state_key=args.state_key, data_root=args.data_root, force=args.force)
        print(f"{d.path}: {d.env} {d.episodes} episodes ({d.held_out_episodes} held out), {d.frames} frames of "
              f"{d.image_size} px; source sha256 {d.source_sha256[:12]}")
        rc = d.render_check
        print(f"state/frame agreement on {rc['rows']} rows: our rendering of a row's own state differs from its frame "
              f"by {rc['own_state_mad']:.1f} (of 255) on average, of another row's state by {rc['other_state_mad']:.1f}"
              " (own far below other: the states place the scene as our env does)")
    else:
        from lewm_bench.training.import_checkpoint import import_checkpoint

        c = import_checkpoint(args.path, args.data, env=args.env, out=args.out, root=args.root, force=args.force)
        print(f"{c.run_dir}: LeWM for {c.env}, {c.parameters:,} parameters, frameskip {c.frameskip}; evaluate with: "
              f"lewm-bench eval --env {c.env} --checkpoint {c.run_dir} --out EVAL_DIR")


def cmd_agents(args: argparse.Namespace) -> None:
    from lewm_bench.envs import env_spec
    from lewm_bench.models.layers import count_parameters
    from lewm_bench.registry import agents

    profile = _profile(args)
    info_env = env_spec(args.env)
    image_size = profile.data_for(info_env.name).image_size
    action_dim = info_env.action_dim * profile.frameskip
    print(f"parameters and tokens of each trainable agent at profile {profile.name}, built for {info_env.name} "
          f"({image_size} px frames, action blocks of {action_dim})")
    registered = agents()
    w = max(10, *map(len, registered))
    print(f"{'agent':{w}s} {'kind':12s} {'tokens/frame':>12s} {'encoder tok':>11s} {'trainable':>11s} "
          f"{'frozen':>11s}  source: description")
    for name, info in registered.items():
        cols = ["-"] * 4
        if info.trainable:
            model = info.build(info.config_for(profile.name), image_size, action_dim, info_env.name)
            cols = [str(getattr(model, "tokens_per_frame", "-")), str(getattr(model, "encoder_tokens_per_frame", "-")),
                    f"{count_parameters(model, True):,}", f"{count_parameters(model, False):,}"]
        print(f"{name:{w}s} {info.kind:12s} {cols[0]:>12s} {cols[1]:>11s} {cols[2]:>11s} {cols[3]:>11s}  "
              f"{info.source}: {info.description}")


def cmd_run(args: argparse.Namespace) -> None:
    from lewm_bench.suite import resolve_suite, run_suite

    if args.suite == "planning-speed":
        from lewm_bench.bench.planning_speed import planning_speed
        from lewm_bench.profiles import get_profile

        profile = get_profile(args.profile or "paper")
        print(f"profile: {profile.name}", file=sys.stderr)
        out = Path(args.out) / "planning-speed" / profile.name
        planning_speed(profile, out, calls=args.calls)
        print((out / "planning_speed.md").read_text())
        print(f"written: {out}/planning_speed.{{csv,md,json,png}}")
        return
    spec = resolve_suite(args.suite)
    if spec.profile is not None and args.profile not in (None, spec.profile):
        raise ValueError(f"suite {args.suite!r} always uses profile {spec.profile!r}; drop --profile")
    if spec.profile is not None:
        args.profile = spec.profile
    profile = _profile(args)
    envs = tuple(_env_names(args.envs)) if args.envs is not None else None
    result = run_suite(args.suite, profile, args.out, envs=envs, agents=args.agents, seeds=args.seeds,
                       force=args.force, progress=not args.no_progress, workers=args.workers, executor=args.executor,
                       cluster=_cluster_config(args), logger=args.logger)
    counts = {s: sum(r.status == s for r in result.records)
              for s in ("done", "skipped", "failed", "blocked", "not-applicable")}
    print(f"suite {args.suite} ({profile.name}) in {args.out}: {len(result.records)} jobs — "
          + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; {result.seconds:.0f} s")
    print("wall time per stage this run: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.stage_seconds().items()))
    if result.peak_rss_mib is not None:
        print(f"peak memory of a job this run: {result.peak_rss_mib / 1024:.2f} GiB (each job's in the jobs/ records)")
    if result.report_dir is not None:
        print((result.report_dir / "results.md").read_text())
        print(f"report: {result.report_dir}")
    if result.failures:
        for r in result.failures:
            print(f"  {r.status}: {r.name}: {r.error}", file=sys.stderr)
        raise LewmBenchError(f"{len(result.failures)} of {len(result.records)} jobs did not finish (listed above; "
                             f"{Path(args.out) / 'suite.csv'}); fix them and rerun — finished jobs are kept")


def cmd_analyze(args: argparse.Namespace) -> None:
    import dataclasses

    import pandas as pd

    from lewm_bench.analysis.run import analysis_dir, analyze

    profile = _profile(args)
    voe = dataclasses.replace(profile.voe, trajectories=_given(args.trajectories, profile.voe.trajectories))
    table = analyze(args.kind, args.env, args.agent, profile, checkpoint=args.checkpoint, root=args.root,
                    seed=args.seed, voe=voe)
    out = analysis_dir(args.root, args.env, args.agent, profile, args.seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 4):
        print(table.to_string(index=False))
    print(f"written: {out}")


def cmd_report(args: argparse.Namespace) -> None:
    from lewm_bench.report import build_report

    report = build_report(args.root or ["runs"], args.out, profile=args.profile,
                          exclude_variants=args.exclude_variant)
    print((report.out_dir / "results.md").read_text())
    print("written: " + ", ".join(str(f) for f in report.files))


def _count(x: float | None) -> str:
    return "unknown" if x is None else f"{x:,.0f}"


def cmd_bench(args: argparse.Namespace) -> None:
    from lewm_bench.bench.common import print_table, write_json
    from lewm_bench.provenance import machine

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch threads {info['torch_threads']}, "
          f"commit {info['commit']}")
    if args.what == "planning":
        from lewm_bench.bench.planning import bench_planning

        profile = _profile(args)
        rows = bench_planning(profile, batch=args.batch, calls=args.calls, context=args.context, agent=args.agent,
                              compile=args.compile, ops=args.ops)
        print_table(rows, ["architecture", "image_size", "params", "cem", "device", "calls", "single_median_s",
                           "batch", "batched_median_s", "batched_per_episode_s", "batched_speedup"])
        print("against references measured in this run: the call without the rollout's reuse of known work (key/value "
              "cache, context frames shared between candidates), and the GEMM throughput of this device in the "
              "planner's precision (2048^3)")
        print_table(rows, ["architecture", "precision", "no_cache_median_s", "single_median_s", "cache_speedup",
                           "no_cache_gflop_per_call", "gflop_per_call", "gflop_per_s", "gemm_gflop_per_s",
                           "fraction_of_gemm"])
        if rows[0]["no_graph_median_s"] is not None:
            print("against the same call with the rollouts run eagerly (no CUDA graph), plans compared on one seed")
            print_table(rows, ["architecture", "no_graph_median_s", "single_median_s", "graph_speedup",
                               "graph_max_abs_diff"])
        if args.compile:
            print("with the rollouts through torch.compile (the first call compiles), against the eager call and the "
                  "GEMM throughput; the costs of one fixed set of candidates compared with the eager ones, beside the "
                  "spread of those costs between candidates")
            print_table(rows, ["architecture", "single_median_s", "first_compiled_call_s", "compiled_median_s",
                               "compiled_speedup", "gemm_gflop_per_s", "compiled_fraction_of_gemm",
                               "compiled_cost_max_abs_diff", "cost_spread"])
        for row in rows:
            for key, mode, timed in (("top_ops", "eager" if row["no_graph_median_s"] is None else "graphed",
                                      "single_median_s"), ("compiled_top_ops", "compiled", "compiled_median_s")):
                if key in row:
                    print(f"the {args.ops} longest operators of a {mode} call, {row['architecture']} architecture "
                          f"(torch.profiler, self time per call over {row[key]['profiled_calls']} calls: "
                          f"{row[key]['profiled_s']:.2f} s a call "
                          f"profiled, {row[timed]:.2f} s timed above, {_count(row[key]['page_faults'])} minor page "
                          f"faults a call while profiled); the products' rate against the "
                          f"{row['gemm_gflop_per_s']:,.0f} GFLOP/s GEMM")
                    print_table([{**r, "op": r["op"] if len(r["op"]) <= 60 else r["op"][:59] + "~"}
                                 for r in row[key]["ops"]], ["op", "shapes", "calls", "self_s", "share", "gflop_per_s",
                                                             "fraction_of_gemm"])
        write_json(args.json, {"benchmark": "planning", "profile": profile.name, "machine": info, "rows": rows})
        return
    if args.what == "train":
        from lewm_bench.bench.train import bench_train

        rows = bench_train(None if args.profile is None else [args.profile], max(args.seconds, 3.0), args.agent)
        print_table(rows, ["profile", "image_size", "batch", "device", "clips_per_s_fp32", "clips_per_s_bf16",
                           "bf16_speedup"])
        write_json(args.json, {"benchmark": "train", "machine": info, "rows": rows})
        return
    if args.what == "envs":
        from lewm_bench.bench.envs import bench_envs

        rows = bench_envs(_env_names(args.env), tuple(args.sizes), args.seconds)
        print_table(rows, ["env", "image_size", "render", "step_per_s", "render_per_s", "physics_per_s"])
        write_json(args.json, {"benchmark": "envs", "machine": info, "rows": rows})
    else:
        from lewm_bench.bench.data import bench_collection, bench_loader

        profile = _profile(args)
        scale = 0.05 if profile.name == "smoke" else 1.0
        collection = bench_collection(profile, _env_names(args.env), scale=scale)
        print("collection (scripted collectors, profile image sizes; process start-up included):")
        print_table(collection, ["env", "image_size", "episodes", "frames_per_s_1w", "frames_per_s_2w", "speedup"])
        loader = bench_loader(episodes=30 if profile.name == "smoke" else 300, seconds=args.seconds)
        print("loader (Two-Room clips of 4 frames at 64x64, history 3, frameskip 5):")
        print_table(loader, ["source", "clips", "open_s", "clips_per_s", "batched_clips_per_s"])
        write_json(args.json, {"benchmark": "data", "profile": profile.name, "machine": info,
                               "collection": collection, "loader": loader})


# ------------------------------------------------------------------------------------ parser
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in the help, except where the help already says what the default is, the option is
    required or a flag, or its default is None (nothing given)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if (action.required or action.nargs == 0 or action.default is None
                or (action.help and "default" in action.help.lower())):
            return action.help
        return super()._get_help_string(action)


def _add(sub: argparse._SubParsersAction, name: str, help_: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_, description=help_, formatter_class=_HelpFormatter)


def _profile_opt(p: argparse.ArgumentParser) -> None:
    from lewm_bench.profiles import PROFILES

    p.add_argument("--profile", choices=list(PROFILES), default=None,
                   help="size preset: paper (the paper's sizes, for a GPU), cpu (minutes on a CPU), smoke "
                        "(seconds, for tests); default: paper with CUDA, cpu otherwise")


def _envs_help() -> str:
    from lewm_bench.envs import env_names

    return ", ".join(env_names())


def _parser_envs(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "envs", "List the environments: short name, Gymnasium id, action and state sizes, success test.")
    p.set_defaults(func=cmd_envs)


def _parser_collect(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "collect", "Collect reward-free offline datasets (HDF5) with scripted, SB3 or random policies. "
                       "Interrupted runs resume when the same command is run again.")
    p.add_argument("--env", required=True, help=f"environment short name ({_envs_help()}), a comma list, or all")
    p.add_argument("--collector", default=None,
                   help="data policy: expert (two-room; pusht: a scripted demonstrator), pusher (pusht), "
                        "oracle (cube), sac (reacher: a trained SB3 SAC expert), random, or sb3:PATH (any saved "
                        "stable-baselines3 model, any env); default: the env's own collector")
    p.add_argument("--episodes", type=positive_int, default=None, help="episodes to collect (default: the profile's)")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="step budget per episode (default: the profile's)")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="frame side in pixels (default: the profile's)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="dataset seed; episode i uses a seed derived from (seed, i)")
    p.add_argument("--held-out-fraction", type=fraction, default=0.1,
                   help="fraction of episodes kept out of training for evaluation")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help="worker processes (1 collects in this process)")
    p.add_argument("--out", default=None, help="dataset file (default: DATA_ROOT/ENV/COLLECTOR-SIZEpx-Nep-seedS.h5)")
    p.add_argument("--data-root", default=str(DATA_ROOT), help="folder for default dataset paths")
    p.add_argument("--force", action="store_true", help="discard an existing dataset or interrupted run at the path")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _profile_opt(p)
    p.set_defaults(func=cmd_collect)


def _parser_datasets(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "datasets",
             "Summarise datasets: env, collector and parameters, episodes, split, lengths, action stats.")
    p.add_argument("paths", nargs="*", help="dataset files (default: every DATA_ROOT/*/*.h5)")
    p.add_argument("--data-root", default=str(DATA_ROOT), help="folder searched when no path is given")
    p.add_argument("--json", action="store_true", help="print the summaries as JSON")
    p.add_argument("--verify", action="store_true",
                   help="read and checksum every chunk; print PATH: OK or one line per damaged episode and array "
                        "(exit status 2 if any file is damaged)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (--verify)")
    p.set_defaults(func=cmd_datasets)


def _parser_agents(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "agents", "List the registered agents (built-in and plugins): kind, tokens per frame, parameters.")
    p.add_argument("--env", default="pusht", help="environment whose frame and action sizes the models are built for")
    _profile_opt(p)
    p.set_defaults(func=cmd_agents)


def _parser_train(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "train", "Train a world model on an environment's dataset (per-epoch CSV log, checkpoints, resume).")
    p.add_argument("--env", required=True, help=f"environment short name ({_envs_help()})")
    p.add_argument("--agent", default="lewm",
                   help="world-model agent: lewm, pldm, dinowm or a plugin (see: lewm-bench agents)")
    p.add_argument("--data", default=None, help="dataset file (default: the profile's dataset under DATA_ROOT)")
    p.add_argument("--data-root", default=str(DATA_ROOT), help="folder of the default dataset paths")
    p.add_argument("--out", default=None, help="run folder (default: runs/train/ENV/AGENT-PROFILE-seedS)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="training seed (data order, init, dropout, SIGReg)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--force", action="store_true", help="delete an existing run in the folder and start over")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the profile's epochs")
    p.add_argument("--steps-per-epoch", type=positive_int, default=None, help="override the profile's steps per epoch")
    p.add_argument("--batch-size", type=positive_int, default=None, help="override the profile's batch size (clips)")
    p.add_argument("--lr", type=positive_float, default=None, help="override the profile's peak learning rate")
    p.add_argument("--sigreg-weight", type=non_negative_float, default=None,
                   help="override lambda, the SIGReg weight (lewm; 0.09 by default; 0 shows collapse)")
    p.add_argument("--encoder-weights", default=None,
                   help="dinowm, dinowm-proprio: local DINOv2 ViT-S/14 checkpoint, torch hub layout "
                        "(dinov2_vits14_pretrain.pth) or Hugging Face facebook/dinov2-small (model.safetensors, "
                        "pytorch_model.bin), paper profile sizes; without it the frozen encoder is pre-trained on "
                        "the env's frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _profile_opt(p)
    _logger_opt(p)
    p.set_defaults(func=cmd_train)


def _parser_eval(sub: argparse._SubParsersAction) -> None:
    from lewm_bench.evaluation.protocol import PROTOCOLS
    from lewm_bench.planning import PLANNERS

    p = _add(sub, "eval", "Evaluate an agent with MPC on the paper's protocol (goal 25 steps ahead, budget 50); writes "
                    "result.json, episodes.csv, episodes.gif and a row of ROOT/summary.csv.")
    p.add_argument("--env", required=True, help=f"environment short name ({_envs_help()})")
    p.add_argument("--agent", default="lewm",
                   help="agent: lewm, pldm, dinowm (trained checkpoints), random (the floor) or a plugin")
    p.add_argument("--checkpoint", default=None,
                   help="run folder or checkpoint.pt (default: ROOT/train/ENV/AGENT-PROFILE-seedS)")
    p.add_argument("--data", default=None, help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--root", default="runs", help="working folder: train/, data/, eval/ and summary.csv")
    p.add_argument("--out", default=None, help="evaluation folder (default: ROOT/eval/ENV/AGENT-PROFILE-seedS)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the agent (and of the checkpoint's run folder)")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="paper",
                   help="paper: goal 25 steps ahead, budget 50; paper-v1-two-room: 100 / 150")
    p.add_argument("--episodes", type=positive_int, default=None,
                   help="evaluation episodes (default: the profile's, 50)")
    p.add_argument("--split", choices=["held_out", "train"], default="held_out",
                   help="episodes the start/goal pairs come from (the reference code used train)")
    p.add_argument("--context", type=positive_int, default=1,
                   help="context frames given to the planner: 1 (the reference evaluation) up to the trained history")
    p.add_argument("--planner", choices=list(PLANNERS), default="cem",
                   help="cem (the paper's) or adam (gradient descent on the action sequence, SPEC §8 ablation)")
    p.add_argument("--iterations", type=positive_int, default=None, help="override the profile's CEM iterations")
    p.add_argument("--candidates", type=positive_int, default=None, help="override the profile's CEM candidates")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="episodes planned per batched call (default: all, at most the env's max_parallel: 10 for cube)")
    p.add_argument("--timing-calls", type=non_negative_int, default=None,
                   help="one-episode planning calls (or policy decisions) timed after the profile's warm-up calls "
                        "(default: the profile's; paper and cpu: 20 after 3, the paper's setting; smoke: 3 after 1)")
    _profile_opt(p)
    _logger_opt(p)
    p.set_defaults(func=cmd_eval)


def _cluster_config(args: argparse.Namespace):
    """The executor's resources: defaults, then the TOML file (``--cluster-config``, else ``OUT/cluster.toml``
    when it exists), then the command-line flags."""
    from lewm_bench.executors import ClusterConfig

    path = args.cluster_config
    if path is None and (Path(args.out) / "cluster.toml").exists():
        path = Path(args.out) / "cluster.toml"
    if path is not None and args.executor == "inline":
        raise ValueError(f"{path}: a cluster config applies to --executor local or slurm, not inline")
    cfg = ClusterConfig.from_file(path) if path is not None else ClusterConfig()
    if path is not None:
        print(f"cluster config: {path}", file=sys.stderr)
    sbatch = {}
    for item in args.sbatch or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--sbatch {item!r}: expected KEY=VALUE, e.g. --sbatch constraint=a100")
        sbatch[key.lstrip("-")] = value
    top = {k: getattr(args, k) for k in ("partition", "account", "qos", "array_parallelism", "max_running")
           if getattr(args, k) is not None}
    if sbatch:
        top["sbatch"] = sbatch
    if args.setup:
        top["setup"] = [*cfg.setup, *args.setup]
    cfg = cfg.updated(top, "command line")
    return cfg.with_all_stages(gpus=args.gpus_per_job, cpus=args.cpus_per_job, mem_gb=args.mem_gb,
                               time_min=args.time_min)


def _logger_opt(p: argparse.ArgumentParser) -> None:
    from lewm_bench.loggers import LOGGERS

    p.add_argument("--logger", choices=list(LOGGERS), default="csv",
                   help="also mirror the log rows and results to TensorBoard (RUN/tensorboard) or wandb (RUN/wandb, "
                        "offline unless WANDB_MODE says otherwise); the CSV files are always written")


def _parser_run(sub: argparse._SubParsersAction) -> None:
    from lewm_bench.suite import SPECIAL_SUITES, SUITES

    suites = {**{k: v.description for k, v in SUITES.items()}, **SPECIAL_SUITES}
    p = _add(sub, "run", "Run a suite over the grid env x agent x seed: collect (reused when identical), train (reused "
                   "when finished with the same config), evaluate, report. Rerunning skips finished jobs and "
                   "resumes interrupted ones.")
    p.add_argument("--suite", required=True,
                   help="; ".join(f"{k}: {v}" for k, v in suites.items()) + " (grid agents: every registered agent "
                        "with in_grid, see: lewm-bench agents)")
    p.add_argument("--envs", default=None, help="only these environments (comma list)")
    p.add_argument("--agents", type=name_list, default=None, help="only these agents (comma list; plugins allowed)")
    p.add_argument("--seeds", type=seed_list, default=None, help="seeds (comma list; default 0)")
    p.add_argument("--out", default="runs", help="working folder: data/, train/, eval/, jobs/, summary.csv, report/")
    p.add_argument("--force", action="store_true", help="redo every job, even finished ones")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes of a collection and of the diagnostics' simulators (default: one per CPU "
                        "core, at most 4 simulators; 1 works in the job's own process)")
    p.add_argument("--calls", type=positive_int, default=None,
                   help="planning-speed: timed calls per agent (default 20 on CUDA, 3 on CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _logger_opt(p)
    c = p.add_argument_group("where the jobs run (README: Run on a cluster)")
    c.add_argument("--executor", choices=["inline", "local", "slurm"], default="inline",
                   help="inline: one job after the other in this process; local: each job in its own process here "
                        "(submitit); slurm: each job in its own SLURM allocation, submitted when its dependencies "
                        "are done (submitit). Rerunning re-attaches to jobs still queued or running")
    c.add_argument("--cluster-config", default=None,
                   help="TOML file of executor settings and per-stage resources (default: OUT/cluster.toml if it "
                        "exists); the flags below override it")
    c.add_argument("--partition", default=None, help="SLURM partition")
    c.add_argument("--account", default=None, help="SLURM account")
    c.add_argument("--qos", default=None, help="SLURM quality of service")
    c.add_argument("--gpus-per-job", type=non_negative_int, default=None,
                   help="GPUs per training, evaluation and analysis job (default 1; collection uses none); a "
                        "training job with several runs under torchrun, one process per GPU")
    c.add_argument("--cpus-per-job", type=positive_int, default=None,
                   help="CPUs per job, every stage (default 8; 4 for analyses); also the job's torch threads")
    c.add_argument("--mem-gb", type=positive_int, default=None, help="memory per job in GB, every stage")
    c.add_argument("--time-min", type=positive_int, default=None,
                   help="time limit per job in minutes, every stage (default: 1440 train, 360 eval, 240 collect, "
                        "120 analyses); a job reaching it is requeued and resumes")
    c.add_argument("--array-parallelism", type=positive_int, default=None,
                   help="SLURM: tasks of one job array running at once (default 64)")
    c.add_argument("--max-running", type=positive_int, default=None,
                   help="submitted jobs queued or running at once (default: no limit on SLURM, 1 for local)")
    c.add_argument("--sbatch", action="append", metavar="KEY=VALUE",
                   help="another sbatch option, repeatable (e.g. --sbatch constraint=a100 --sbatch mail-type=FAIL)")
    c.add_argument("--setup", action="append", metavar="LINE",
                   help="a shell line run before each job, repeatable (e.g. --setup 'module load cuda')")
    _profile_opt(p)
    p.set_defaults(func=cmd_run)


def _parser_analyze(sub: argparse._SubParsersAction) -> None:
    from lewm_bench.analysis.run import KINDS

    p = _add(sub, "analyze", "Physical understanding of a trained world model: voe (surprise at a teleport or a colour "
                       "change, paired t-test) or probe (linear and MLP probes of physical quantities); or why its "
                       "plans fail: diagnostics (open-loop prediction error over the planning horizon, and how the "
                       "true simulator ranks the plan CEM returns among its candidates).")
    p.add_argument("kind", choices=list(KINDS),
                   help="voe: violation of expectation; probe: probing; diagnostics: model diagnostics")
    p.add_argument("--env", required=True, help=f"environment short name ({_envs_help()})")
    p.add_argument("--agent", default="lewm", help="world-model agent (lewm, pldm, dinowm or a plugin)")
    p.add_argument("--checkpoint", default=None, help="run folder (default: ROOT/train/ENV/AGENT-PROFILE-seedS)")
    p.add_argument("--root", default="runs", help="working folder; results go to ROOT/analysis/")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the trained run")
    p.add_argument("--trajectories", type=positive_int, default=None,
                   help="voe: trajectories (default: the profile's, 40; at least 30 for a meaningful test)")
    _profile_opt(p)
    p.set_defaults(func=cmd_analyze)


def _parser_report(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "report", "Tables (CSV, Markdown) and plots from finished evaluations, beside the paper's numbers.")
    p.add_argument("--root", action="append", default=None,
                   help="folder holding summary.csv and train/ (a run's --out; default runs); repeat it to pool "
                        "runs made in separate folders into one report (the same evaluation in two is an error)")
    p.add_argument("--out", default=None, help="output folder (default ROOT/report; required with several --root)")
    p.add_argument("--profile", default=None, help="only this profile (default: every profile found)")
    p.add_argument("--exclude-variant", action="append", default=[], metavar="TEXT",
                   help="leave out evaluations whose variant (summary.csv) contains TEXT, e.g. 'trained on' for "
                        "the data-quality runs beside the main protocol; repeatable")
    p.set_defaults(func=cmd_report)


def _parser_bench(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "bench", "Performance benchmarks; print figures (and ratios measured in the same run).")
    p.add_argument("what", choices=["envs", "data", "train", "planning"],
                   help="envs: env steps/s and rendered frames/s at 64 and 224 px; data: collection frames/s "
                        "with 1 and 2 workers, and loader clips/s; train: LeWM training clips/s per profile "
                        "(all profiles unless --profile), fp32 and bf16; planning: one CEM call of LeWM at the paper "
                        "architecture and the profile's, one episode at a time and batched")
    p.add_argument("--env", default="all", help="environment short name, comma list, or all")
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[64, 224], help="image sizes for 'bench envs'")
    p.add_argument("--seconds", type=positive_float, default=1.0, help="minimum timing window per figure")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="episodes per batched planning call (default: 50; 4 for the paper architecture on CPU)")
    p.add_argument("--calls", type=positive_int, default=None,
                   help="timed one-episode planning calls after 2 warm-ups (default: 20; 5 for paper on CPU)")
    p.add_argument("--context", type=positive_int, default=1,
                   help="planning: context frames per call (random frames and past actions); with more than one, the "
                        "candidates share the frames before the first planned action")
    p.add_argument("--agent", default="lewm",
                   help="planning and train: the world model to time (default lewm; e.g. dinowm, pldm)")
    p.add_argument("--compile", action="store_true",
                   help="planning: also time the call with the rollouts through torch.compile (compiling takes "
                        "tens of seconds per architecture)")
    p.add_argument("--ops", type=non_negative_int, default=0, metavar="N",
                   help="planning: also profile two one-episode calls (and two compiled ones with --compile) and "
                        "print the N longest operators per input shape (torch.profiler self time per call, share of "
                        "the call), each matrix product's GFLOP/s against the GEMM throughput (default 0: none)")
    p.add_argument("--json", default=None, help="also write every figure, with the machine, to this JSON file")
    _profile_opt(p)
    p.set_defaults(func=cmd_bench)


def _parser_import(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "import", "Import the authors' data and weights: a stable-worldmodel HDF5 dataset, or a released "
                      "LeWM checkpoint (weights.pt + config.json). Reads local files only.")
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    d = _add(what, "dataset", "Convert a stable-worldmodel .h5 dataset (ep_len/ep_offset layout) into a lewm-bench "
                              "dataset, episodes split into train and held-out.")
    d.add_argument("path", help="the .h5 file (e.g. tworoom.h5, pusht_expert_train.h5)")
    d.add_argument("--env", default=None, help=f"our environment ({_envs_help()}); default: from the file name")
    d.add_argument("--out", default=None, help="dataset file (default: DATA_ROOT/ENV/swm-<name>.h5)")
    d.add_argument("--held-out-fraction", type=fraction, default=0.1, help="fraction of episodes held out")
    d.add_argument("--seed", type=non_negative_int, default=0, help="seed of the train/held-out split")
    d.add_argument("--state-key", default=None,
                   help="source column for the env's physical state (default: state, proprio or observation, the "
                        "first whose width is the env's state size)")
    d.add_argument("--data-root", default=str(DATA_ROOT), help="folder for the default output path")
    d.add_argument("--force", action="store_true", help="replace an existing output file")
    d.set_defaults(func=cmd_import)
    c = _add(what, "checkpoint", "Convert a released LeWM checkpoint into a run folder that eval takes.")
    c.add_argument("path", help="folder holding weights.pt and config.json, or the weights file")
    c.add_argument("--data", required=True,
                   help="the imported dataset the model plans on (its env, frame size and action statistics)")
    c.add_argument("--env", default=None, help="our environment (default: the dataset's)")
    c.add_argument("--out", default=None, help="run folder (default: ROOT/train/ENV/lewm-authors)")
    c.add_argument("--root", default="runs", help="working folder of the default run folder")
    c.add_argument("--force", action="store_true", help="replace an existing checkpoint in the run folder")
    c.set_defaults(func=cmd_import)


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-parser per command (``_parser_NAME``); choices come from the registries."""
    parser = _Parser(
        prog="lewm-bench", description="Benchmark suite for reward-free world models that plan in latent space.",
        formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"lewm-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in (_parser_envs, _parser_collect, _parser_datasets, _parser_agents, _parser_train, _parser_eval,
                       _parser_run, _parser_analyze, _parser_report, _parser_bench, _parser_import):
        add_parser(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (the first line of a multi-line message, e.g. from a library)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__) + (" [...]" if len(lines) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    from lewm_bench.allocator import keep_freed_memory

    keep_freed_memory()  # a step's large tensors reuse freed memory instead of fresh pages (lewm_bench.allocator)
    from lewm_bench.provenance import git_commit

    git_commit()  # the tree this process's code comes from, before anything can change it
    # `kill` (SIGTERM) gets the same orderly stop as Ctrl-C: finished episodes stay on disk.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("lewm-bench: interrupted; finished work is saved, rerun the same command to resume", file=sys.stderr)
        return 130
    except (LewmBenchError, ValueError, TypeError) as exc:
        print(f"lewm-bench: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system refused (disk full, permission, a file that went away): still one line
        print(f"lewm-bench: error: {_one_line(exc)}; fix the cause and rerun the same command (finished work is "
              "kept)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
