"""Success per env x agent: the cpu profile's 7 epochs (the 8440b71 grid) against 5 epochs (this run), with the
Wilson 95% intervals each result records, and how many of the 50 episodes (the same tasks) changed outcome."""
import csv
import json
import sys
from pathlib import Path


def interval(r: dict) -> str:
    return f"{r['success_rate']:4.0%} [{r['success_ci_low']:.0%}, {r['success_ci_high']:.0%}]"


def tasks(episodes: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["start"], r["goal"], r["episode"]) for r in episodes]


old, new = Path(sys.argv[1]), Path(sys.argv[2])
print("env       agent   7 epochs (8440b71)     5 epochs               same interval  episodes changed")
for env in ("two-room", "cube", "pusht"):
    for agent in ("lewm", "pldm", "dinowm"):
        a, b = (p / "eval" / env / f"{agent}-cpu-seed0" for p in (old, new))
        ra, rb = (json.loads((p / "result.json").read_text()) for p in (a, b))
        ea, eb = (list(csv.DictReader(open(p / "episodes.csv"))) for p in (a, b))
        assert tasks(ea) == tasks(eb)
        changed = sum(x["success"] != y["success"] for x, y in zip(ea, eb))
        inside = ra["success_ci_low"] <= rb["success_rate"] <= ra["success_ci_high"]
        print(f"{env:9s} {agent:7s} {interval(ra):22s} {interval(rb):22s} {'yes' if inside else 'NO':14s} {changed}")
