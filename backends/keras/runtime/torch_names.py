"""Dotted layer names under Keras's torch backend (imported for its effect).

The generated layers are named as the portable weights are (`stem.conv`), and a Keras
variable's path holds its layer's name (`stem.conv/kernel`). Keras's torch backend registers
every variable in a torch.nn.ParameterDict keyed by that path, and torch refuses a key with a
dot ("parameter name can't contain '.'"), so no such model builds. Under that backend only,
this module keys the dictionary by the path with each dot written as a hyphen, which no
layer name of a generated model holds; the Keras variables and their paths are unchanged.
Other backends keep no such dictionary and are left alone.
"""

import keras


def torch_key(variable):
    """The ParameterDict key of a Keras variable: its path, dots as hyphens."""
    return variable.path.replace(".", "-")


def _track_variables(self):
    """Keras's TorchLayer._track_variables, keyed by torch_key."""
    import torch

    self._torch_params = torch.nn.ParameterDict(
        {torch_key(v): v.value for v in self.variables}
    )


def _post_track_variable(self, variable):
    """Keras's TorchLayer._post_track_variable, keyed by torch_key."""
    if hasattr(self, "_torch_params") and torch_key(variable) not in self.torch_params:
        self.torch_params[torch_key(variable)] = variable.value


def _post_untrack_variable(self, variable):
    """Keras's TorchLayer._post_untrack_variable, keyed by torch_key."""
    if hasattr(self, "_torch_params") and torch_key(variable) in self.torch_params:
        self.torch_params.pop(torch_key(variable))


def key_parameters_without_dots():
    """Under the torch backend, key each layer's parameters by torch_key."""
    if keras.backend.backend() != "torch":
        return
    from keras.src.backend.torch.layer import TorchLayer

    TorchLayer._track_variables = _track_variables
    TorchLayer._post_track_variable = _post_track_variable
    TorchLayer._post_untrack_variable = _post_untrack_variable


key_parameters_without_dots()
