"""Models (torch): the zoo with torchvision's parameter names (``zoo``), user modules given as
``FILE.py:CLASS`` (``spec``) and crisp-edge checkpoints (``checkpoint``)."""
