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


def unit_square_ax_client(name: str = "exp", *, parameters: Any = ("x", "y"), objectives: Any = ("objective",),
                          minimize: bool = True, sobol: bool = True, seed: int = 1) -> Any:
    """An ``AxClient`` for tests: float parameters in [0, 1] (names, or full Ax parameter dicts),
    the given objectives, quasi-random generation only (``sobol``) or Ax's default strategy."""
    import warnings

    from ax.service.ax_client import AxClient, ObjectiveProperties

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = AxClient(generation_strategy=sobol_generation_strategy() if sobol else None,
                          verbose_logging=False, random_seed=seed)
    client.create_experiment(
        name=name,
        parameters=[p if isinstance(p, dict) else
                    {"name": p, "type": "range", "bounds": [0.0, 1.0], "value_type": "float"} for p in parameters],
        objectives={o: ObjectiveProperties(minimize=minimize) for o in objectives},
    )
    return client
