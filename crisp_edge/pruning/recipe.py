"""The pruning recipe's defaults: layer allocation, schedule and recovery.

Kept apart from :mod:`crisp_edge.pruning.engine` so the command line can show them in ``--help``
without importing torch (a board runs ``crisp-edge`` with numpy and cffi only). Each value was
chosen by the pruning benchmark; docs/pruning.md gives the measurement behind it.
"""

ALLOCATION = "lamp"          # crisp_edge.pruning.allocation.RULES
ALLOCATION_FLOOR = 0.0       # lowest kept-block ratio of any layer; 0 = none
SCHEDULE = "cubic"           # how the kept-block ratio falls: linear or cubic
CUBIC_STEPS = 4              # block steps K of the cubic schedule (linear: 10 % of blocks a step)
FINAL_EPOCHS = 6             # extra fine-tuning epochs at the final sparsity
DISTILL = True               # distil from the dense model's logits on the user's classes
DISTILL_ALPHA = 0.5          # weight of the distillation term
DISTILL_TEMPERATURE = 4.0
BN_RECALIBRATE = True        # re-estimate BatchNorm statistics after every mask change
NM_SCORE = "saliency"        # crisp's N:M choice inside kept blocks: saliency or magnitude
SHARED_ROWS = 4              # rows of a block-row sharing one N:M choice (1 = per-row, the paper)
