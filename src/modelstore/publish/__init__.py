"""Making and moving registries: build artifacts from upstream (``build``), the list of LHCb
models (``catalog``), copy a registry elsewhere (``push``), copy one model out (``export``)."""
