"""The runtime: runs in worker processes under a run manager, the SQLite run store, checkpoints,
exports and playback. It drives the engine through the trainer contract of
``core/engine/trainer.py`` (``docs/ARCHITECTURE.md``)."""
