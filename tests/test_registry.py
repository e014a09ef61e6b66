import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lewm_bench import registry
from lewm_bench.baselines.dinowm import DinoWMConfig
from lewm_bench.models.lewm import LeWM
from lewm_bench.registry import RegistryError, agents, config_from_dict, get_agent, register_agent, unregister_agent

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny_agent"


def test_builtins_register_through_the_public_api():
    found = agents()
    assert {"lewm", "pldm", "dinowm", "random"} <= set(found)
    assert found["lewm"].cls is LeWM and found["lewm"].kind == "world_model" and found["lewm"].source == "built-in"
    assert found["random"].kind == "policy"


def test_register_as_decorator_and_call_then_duplicate_is_an_error():
    class Policy:
        """A do-nothing policy."""
        kind = "policy"

        def act(self, observation, goal):
            return None

    try:
        assert register_agent("test-policy")(Policy) is Policy
        assert get_agent("test-policy").description == "A do-nothing policy."
        register_agent("test-policy", Policy)  # the same class again is harmless (re-import)

        class Other(Policy):
            pass

        with pytest.raises(RegistryError, match="'test-policy' is already registered by .*choose another name"):
            register_agent("test-policy", Other)
        with pytest.raises(RegistryError, match="'lewm' is already registered by built-in"):
            register_agent("lewm", Other)
    finally:
        unregister_agent("test-policy")
    with pytest.raises(RegistryError, match="unknown agent 'test-policy'; valid agents: dinowm, dinowm-proprio, "
                                            "gcbc, gciql, gcivl, lewm, oracle, pldm, random, sac-her, sb3"):
        get_agent("test-policy")


def test_a_class_missing_methods_is_rejected_naming_them():
    class Half:
        kind = "world_model"

        def encode(self, frames):
            return frames

    with pytest.raises(RegistryError, match=r"agent 'half' \(.*Half\): a world_model must define config_class, "
                                            r"presets, loss_terms, loss, predict, rollout, history"):
        register_agent("half", Half)
    with pytest.raises(RegistryError, match="'kind' must be one of world_model, policy; got None"):
        register_agent("nokind", type("NoKind", (), {}))

    @dataclasses.dataclass(frozen=True)
    class NoHistory:
        width: int = 3

    full = type("Full", (LeWM,), {"config_class": NoHistory})
    with pytest.raises(RegistryError, match="config_class must be a dataclass with a 'history' field"):
        register_agent("full", full)
    assert "half" not in agents() and "full" not in agents()


def test_config_round_trips_through_its_json_form():
    for cfg in (LeWM.presets["cpu"], DinoWMConfig(encoder_weights="/x.pth")):
        data = dataclasses.asdict(cfg)
        as_json = {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}
        assert config_from_dict(type(cfg), as_json) == cfg
    with pytest.raises(RegistryError, match="LeWMConfig has no fields bogus"):
        config_from_dict(type(LeWM.presets["cpu"]), {"bogus": 1})


def install_example(site: Path, module_source: str | None = None) -> None:
    """Lay out the example plugin in ``site`` as ``pip install`` does: the module plus a dist-info
    folder whose entry_points.txt registers it in the ``lewm_bench.agents`` group."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "tiny_agent.py").write_text(module_source or (EXAMPLE / "tiny_agent.py").read_text())
    info = site / "lewm_bench_tiny_agent-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lewm-bench-tiny-agent\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[lewm_bench.agents]\ntiny = tiny_agent:TinyWorldModel\n")


def test_example_pyproject_declares_the_entry_point_the_test_installs():
    text = (EXAMPLE / "pyproject.toml").read_text()
    assert '[project.entry-points."lewm_bench.agents"]\ntiny = "tiny_agent:TinyWorldModel"' in text


def test_entry_point_discovery_in_process(tmp_path, monkeypatch):
    install_example(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_LOADED", False)
    try:
        info = get_agent("tiny")
        assert info.kind == "world_model" and info.source == "plugin lewm-bench-tiny-agent"
    finally:
        unregister_agent("tiny")
        sys.modules.pop("tiny_agent", None)


def test_a_broken_plugin_is_named(tmp_path, monkeypatch):
    broken = textwrap.dedent("""
        class TinyWorldModel:
            kind = "world_model"
            def encode(self, frames): ...
    """)
    install_example(tmp_path, broken)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_LOADED", False)
    try:
        assert "tiny" not in agents() and "lewm" in agents()  # the others keep working
        with pytest.raises(RegistryError, match=r"agent 'tiny' from lewm-bench-tiny-agent "
                                                r"\(tiny_agent:TinyWorldModel\) failed to load: .*a world_model "
                                                r"must define config_class, presets"):
            get_agent("tiny")
    finally:
        registry._BROKEN.pop("tiny", None)
        sys.modules.pop("tiny_agent", None)


def test_a_plugin_that_exits_does_not_end_lewm_bench(tmp_path, monkeypatch, capsys):
    install_example(tmp_path, "import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_LOADED", False)
    try:
        assert "lewm" in agents()
        assert capsys.readouterr().err.count("agent 'tiny'") == 1  # reported once, by name
        with pytest.raises(RegistryError, match="failed to load: SystemExit: 3"):
            get_agent("tiny")
    finally:
        registry._BROKEN.pop("tiny", None)
        sys.modules.pop("tiny_agent", None)


def test_out_of_tree_plugin_trains_and_evaluates_through_the_cli(tmp_path):
    """The example plugin, installed beside lewm-bench, is listed, trained and evaluated like a built-in."""
    site = tmp_path / "site"
    install_example(site)
    env = dict(__import__("os").environ, PYTHONPATH=str(site))

    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "lewm_bench.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    listing = cli("agents", "--profile", "smoke")
    assert any(line.split()[:2] == ["tiny", "world_model"] and "plugin lewm-bench-tiny-agent" in line
               for line in listing.splitlines())
    cli("collect", "--env", "two-room", "--profile", "smoke", "--no-progress", "--workers", "1")
    out = cli("train", "--env", "two-room", "--agent", "tiny", "--profile", "smoke", "--no-progress")
    assert "runs/train/two-room/tiny-smoke-seed0: trained" in out
    log = (tmp_path / "runs/train/two-room/tiny-smoke-seed0/log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,loss,pred_loss,variance,val_pred_loss") and len(log) == 4
    out = cli("eval", "--env", "two-room", "--agent", "tiny", "--profile", "smoke", "--timing-calls", "2")
    assert "two-room tiny success" in out and "over 4 episodes" in out
    summary = (tmp_path / "runs/summary.csv").read_text().splitlines()
    assert summary[1].startswith("two-room,tiny,smoke,0,4,")
