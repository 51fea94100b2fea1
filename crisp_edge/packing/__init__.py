"""Packing (host): ``torch.export`` lowering (``lower``, ``ir``), the per-layer encoding plan
(``plan``, ``patterns``), int8 quantisation (``quantize``) and the packer (``pack``)."""
