"""lewm-bench: a benchmark suite for reward-free world models that plan in latent space."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lewm-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
