"""Data sets (torch): ``sources`` opens a SOURCE string (``synthetic[:N]``, ``cifar100:DIR``, an
image folder) as a class-aware data set; ``synthetic``, ``cifar`` and ``imagefolder`` are the
sources, ``source`` their common base."""
