"""Making and moving registries: publish any model's forms (``generic``: ``publish_forms``), build
the LHCb catalog from upstream through it (``build``, ``catalog``), copy a registry elsewhere
(``push``), copy one model out (``export``)."""

from modelstore.publish.generic import build_forms, publish_forms

__all__ = ["build_forms", "publish_forms"]
