"""``import lewm_bench`` alone registers every Gymnasium id, without importing a simulator."""

import json
import subprocess
import sys

HEAVY = ("mujoco", "pymunk", "pygame", "dm_control", "ogbench", "gym_pusht", "torch")


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_lewm_bench_registers_ids_without_importing_simulators():
    got = _run(
        "import json, sys, gymnasium as gym, lewm_bench\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "ids = sorted(i for i in gym.registry if i.startswith('lewm_bench/'))\n"
        "names = sorted(s.name for s in lewm_bench.envs.ENVS.values())\n"
        "print(json.dumps({'heavy': heavy, 'ids': ids, 'names': names}))"
    )
    assert got["heavy"] == []
    assert {"lewm_bench/TwoRoom-v0", "lewm_bench/PushT-v0", "lewm_bench/Cube-v0",
            "lewm_bench/Reacher-v0"} <= set(got["ids"])
    assert len(got["ids"]) == len(got["names"])


def test_gym_make_after_import_lewm_bench():
    got = _run(
        "import json, sys, gymnasium as gym, lewm_bench\n"
        "env = gym.make('lewm_bench/TwoRoom-v0', image_size=16)\n"
        "obs, info = env.reset(seed=0)\n"
        "print(json.dumps({'shape': list(obs.shape), 'state': len(info['state']), 'pymunk': 'pymunk' in sys.modules}))"
    )
    assert got == {"shape": [16, 16, 3], "state": 2, "pymunk": False}
