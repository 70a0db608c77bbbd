"""Sweeps: a grid of hyperparameters × seeds × algorithms, run locally by the run manager or on
Ray, and watched through the store (``docs/ARCHITECTURE.md``)."""
