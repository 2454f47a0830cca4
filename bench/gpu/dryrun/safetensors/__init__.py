"""A stand-in for safetensors, for the dry run of bench/gpu/bench_gpu.py
(see torch/__init__.py here): it parses the format and no more."""

__version__ = "0.0-dryrun-stand-in"
