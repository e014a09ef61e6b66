"""lewm-bench: a benchmark suite for reward-free world models that plan in latent space.

Importing the package registers every environment's Gymnasium id (``lewm_bench/TwoRoom-v0``,
``lewm_bench/PushT-v0``, ``lewm_bench/Cube-v0``, ``lewm_bench/Reacher-v0``), so ``import lewm_bench``
then ``gymnasium.make("lewm_bench/TwoRoom-v0")`` works. The ids point at ``"module:Class"`` strings
and the env modules import pymunk or MuJoCo only when an env is made, so the import stays light.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lewm-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from lewm_bench import envs as _envs  # noqa: E402, F401  (registers the Gymnasium ids)
