"""Re-personalisation: adapt a packed model to other or new classes, keeping its sparsity.

``local`` runs on this machine over the C runtime (the code path a board runs, without torch:
a folder of images is decoded and preprocessed in C); ``board`` runs the board's own
``crisp-personalize`` over SSH. docs/personalize.md describes both.
"""
