"""The front end reserves every public torch.nn.Module member (a statement would shadow it)."""

import pytest

from archdsl.lowering import FRAMEWORK_MEMBERS

nn = pytest.importorskip("torch.nn")


def test_every_public_module_member_is_reserved():
    public = {name for name in dir(nn.Module) if not name.startswith("_")}
    public |= {name for name in vars(nn.Module()) if not name.startswith("_")}
    assert public <= FRAMEWORK_MEMBERS, sorted(public - FRAMEWORK_MEMBERS)
