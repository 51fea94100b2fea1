"""Pruning (torch): the hybrid pattern's mask maths (``masks``), layer allocation
(``allocation``), class-aware saliency (``saliency``), masking modes (``masking``), the baselines
(``baselines``), training loops (``training``), ``torchrun`` support (``distributed``), the engine
(``engine``: :func:`~crisp_edge.pruning.engine.prune`), reports (``report``), the recipe's
defaults (``recipe``, torch-free) and the flows behind the CLI (``runs``).

Nothing is re-exported here, so ``from crisp_edge.pruning import recipe`` stays torch-free."""
