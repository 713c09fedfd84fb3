"""Command-line entry points (thin wrappers; the work lives in the package)."""
