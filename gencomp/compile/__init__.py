"""Compilation and caching: the content-addressed disk cache and the C compiler driver."""
