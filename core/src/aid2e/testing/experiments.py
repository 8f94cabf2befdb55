"""Small Ax helpers for tests of scheduling (not of modelling); Ax is imported on call."""

from __future__ import annotations

from typing import Any


def sobol_generation_strategy() -> Any:
    """An Ax generation strategy of quasi-random (Sobol) trials only, never capped in flight."""
    from ax.adapter.registry import Generators
    from ax.generation_strategy.generation_node import GenerationStep
    from ax.generation_strategy.generation_strategy import GenerationStrategy

    return GenerationStrategy(
        nodes=[GenerationStep(generator=Generators.SOBOL, num_trials=-1, max_parallelism=None)]
    )
