"""Measurement scripts and their helpers; run each as ``python -m benchmarks.<script>`` from the repo root."""
