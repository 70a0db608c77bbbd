"""The engine: environments, networks, fast kernels, rollouts, replay, the trust-region solver and
the trainers. It imports only ``core.config`` and ``core.metrics``, never the runtime, sweeps, labs
or the app (``docs/ARCHITECTURE.md``)."""
