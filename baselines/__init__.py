"""Baseline agents (PLDM, DINO-WM-style), registered through the public agent registry.

They arrive with the baselines issue; the package exists now so that the import namespace
``lewm_bench.baselines`` is stable.
"""
