"""Choosing the Kimi account for each answer: health, cooldowns, in-flight limits, waiting for capacity."""
