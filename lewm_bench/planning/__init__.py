"""Planners over the world-model interface: CEM (the paper's) and a gradient-based one (Adam)."""
