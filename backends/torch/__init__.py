"""The PyTorch target: emitter.py writes model.py; runtime/ is copied verbatim."""
