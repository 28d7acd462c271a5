"""torch.compile on every spec in specs/: the generated model's forward and its training
loss trace as one graph each (no graph breaks, torch._dynamo.explain), but for recurrent
layers, which dynamo does not trace. Dynamo traces a model for seconds on the CPU: one spec
runs by default, every spec under -m slow."""

from pathlib import Path

import pytest
from ptgen import ROOT

torch = pytest.importorskip("torch")

# one representative in the default run (AlexNet's layers at a pocket size), the rest slow
DEFAULT = ROOT / "specs" / "mini_alexnet.arch"
SPECS = [
    pytest.param(path, marks=() if path == DEFAULT else pytest.mark.slow)
    for path in sorted((ROOT / "specs").rglob("*.arch"))
]


def example_input(module):
    """A batch of two inputs of the model's input shape (token ids for a text model)."""
    vocab = getattr(module, "INPUT_VOCAB", None)
    if vocab is not None:
        return torch.randint(0, vocab, (2, *module.INPUT_SHAPE))
    return torch.randn(2, *module.INPUT_SHAPE)


def breaks(function, *args):
    """The graph breaks dynamo finds in function(*args) (reasons, as text)."""
    torch._dynamo.reset()
    explained = torch._dynamo.explain(function)(*args)
    return [str(b.reason) for b in explained.break_reasons]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_the_model_and_its_loss_trace_without_graph_breaks(compiled_file, path):
    module = compiled_file(Path(path)).module
    net = module.build_model()
    x = example_input(module)
    if any(isinstance(m, torch.nn.RNNBase) for m in net.modules()):
        # dynamo leaves nn.LSTM / nn.GRU to eager mode by design (README says so)
        assert "RNN, GRU, or LSTM" in breaks(net.eval(), x)[0]
        return
    assert breaks(net.eval(), x) == []
    if len(getattr(module, "OUTPUT_SHAPE", (module.NUM_CLASSES,))) == 1:  # class scores
        y = torch.zeros(2, dtype=torch.long)
        criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        net.train()
        assert breaks(lambda x, y: criterion(net(x), y), x, y) == []
