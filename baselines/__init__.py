"""Baseline agents, registered through the public agent registry (:mod:`lewm_bench.registry`)
exactly as a plugin would: ``pldm`` (SPEC §5.3), ``dinowm`` (DINO-WM-style, §5.4), ``random`` (§5.5).
"""
