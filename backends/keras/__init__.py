"""The Keras 3 target: emitter.py writes model.py; runtime/ is copied verbatim."""
