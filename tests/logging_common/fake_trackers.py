"""Stand-ins for wandb and mlflow (not installed here) that record every call."""

import importlib.machinery
import types


class Recorder:
    """Records each method call as (path, args, kwargs) in calls; a call returns a
    Recorder of its result (wandb.init() -> the run, whose .log is recorded too)."""

    def __init__(self, path, calls):
        """Record under this dotted path."""
        self.path, self.calls = path, calls

    def __getattr__(self, attr):
        """A recording function for any public name."""
        if attr.startswith("__"):
            raise AttributeError(attr)

        def call(*args, **kwargs):
            self.calls.append((f"{self.path}.{attr}", args, kwargs))
            return Recorder(f"{self.path}.{attr}()", self.calls)

        return call


def fake_package(name, calls):
    """A module named name (found by importlib.util.find_spec once in sys.modules) whose
    every function records its calls in calls."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__getattr__ = Recorder(name, calls).__getattr__
    return module


def logged(calls, function):
    """{step: {tag: value}} of the recorded calls of function (e.g. "mlflow.log_metrics")."""
    steps = {}
    for path, args, kwargs in calls:
        if path == function:
            steps.setdefault(kwargs["step"], {}).update(args[0])
    return steps
