"""torchvision state_dict keys -> the keys of the model archdsl compiles from specs/zoo/*.arch.

archdsl names a PyTorch tensor `STATEMENT.LABEL.TENSOR`: the statement as the spec's block
calls nest it (`layer2.0.conv1`: call 0 of `layer2 = basic(...) * 2`, its statement `conv1`;
`inception3a.branch2.1.conv`: the second `basic` call of `branch2` in `inception3a`), the op's
label within the statement (`conv`, `batchnorm`, `dense`; a repeated op `batchnorm_2`), then
torch's own tensor name (`weight`, `bias`, `running_mean`, `running_var`).

torchvision names by module attributes (`layer2.0.bn1.weight`) or by position in an
nn.Sequential (`features.7.weight`). Each function below maps one family's keys by rule:

- `resnet` (resnet18/34/50/101, resnext50_32x4d, wide_resnet50_2: one naming whatever the
  block, depth, groups or width): `conv1`/`bn1` -> `stem.conv`/`stem.batchnorm`;
  `layerL.B.convK` -> `layerL.B.convK.conv`, `layerL.B.bnK` -> `layerL.B.convK.batchnorm`;
  `layerL.B.downsample.0`/`.1` -> `layerL.B.downsample.conv`/`.batchnorm`; `fc` -> `head.dense`.
- `vgg` (vgg11, vgg16, vgg16_bn): `features.I` is the I-th module of torchvision's
  `make_layers` over configuration A (vgg11) or D (vgg16) (conv, [batchnorm,] relu per number;
  one maxpool per "M"); the c-th conv of stage s is `stage{s}.{c}.conv.conv` (its batch norm
  `.batchnorm`), or `stage{s}.conv.conv` where the stage has one conv (a single call is not
  numbered); `classifier.0/3/6` -> `fc6/fc7/fc8.dense`.
- `googlenet`: `convN.conv`/`convN.bn` -> `convN.conv.conv`/`.batchnorm`;
  `inceptionX.branch1.*` -> `inceptionX.branch1.conv.*`; `inceptionX.branchB.J.*` (B = 2, 3:
  two BasicConv2d) -> `inceptionX.branchB.J.conv.*`; `inceptionX.branch4.1.*` (0 is the pool)
  -> `inceptionX.branch4.conv.*`; `bn` -> `batchnorm` throughout; `fc` -> `fc.dense`.
- `squeezenet` (1.0 and 1.1): `features.0` -> `conv1.conv`; the k-th Fire module of
  `features` (k = 0, 1, ...; the indices between are pools and ReLUs, which have no tensors) is
  `fire{k + 2}`: `.squeeze`/`.expand1x1`/`.expand3x3` -> `fire{k+2}.squeeze.conv` etc.;
  `classifier.1` -> `head.conv`.
- `mobilenet_v2`: `features.0.0`/`.0.1` -> `stem.conv`/`stem.batchnorm`; `features.1` ..
  `features.17` are the inverted residuals of torchvision's setting table (t, c, n, s), stage k
  (1-based) giving `block{k}` (`block{k}.{i}` when n > 1); inside one, `conv.0.0`/`conv.0.1` is
  the expansion conv/bn (the depthwise one when t == 1), then the depthwise `conv.1.0`/`.1.1`,
  then the projection conv and bn (`conv.1`/`conv.2` when t == 1, else `conv.2`/`conv.3`),
  -> `expand`, `depthwise`, `project`; `features.18.0`/`.1` -> `last`; `classifier.1` ->
  `head.dense`.
- `densenet` (densenet121, densenet169): `features.conv0`/`norm0` -> `stem.conv`/`stem.batchnorm`;
  `features.denseblockB.denselayerL.{norm1,conv1,norm2,conv2}` ->
  `denseblockB.{L-1}.new.{batchnorm,conv,batchnorm_2,conv_2}`;
  `features.transitionT.{norm,conv}` -> `transitionT.down.{batchnorm,conv}`;
  `features.norm5` -> `head.batchnorm`; `classifier` -> `head.dense`.
- `inception_v3` (aux_logits=False): every tensor is a BasicConv2d's (`.conv`, `.bn`) or the
  classifier's; the spec names its statements as torchvision's modules, lower-cased:
  `Conv2d_1a_3x3.{conv,bn}` -> `conv2d_1a_3x3.conv.{conv,batchnorm}`,
  `Mixed_6b.branch7x7dbl_3.{conv,bn}` -> `mixed_6b.branch7x7dbl_3.conv.{conv,batchnorm}`;
  `fc` -> `fc.dense`.
- `mnasnet` (mnasnet1_0): `layers.I` is the I-th module of torchvision's `layers` list: 0/1
  conv/bn -> `stem`; 3/4 and 6/7 (the depthwise and pointwise convs) -> `separable.conv`,
  `.batchnorm`, `.conv_2`, `.batchnorm_2`; 8 .. 13 the six stacks -> `stack{k}` (`stack{k}.{i}`
  for a stack of several blocks), whose `layers.0/1`, `3/4`, `6/7` are `expand`, `depthwise`,
  `project` (conv/bn); 14/15 -> `last`; `classifier.1` -> `head.dense`.
- `shufflenet_v2` (shufflenet_v2_x1_0): `conv1.0`/`.1` and `conv5.0`/`.1` -> `conv1`/`conv5`
  `.conv`/`.batchnorm`; in `stageS.K` (K = 0 the halving unit, then the plain ones, as the
  spec's `down(w) |> unit * n` numbers its calls) `branch1.0/1/2/3` ->
  `stageS.K.branch1.{conv,batchnorm,conv_2,batchnorm_2}` and `branch2.0/1`, `3/4`, `5/6` ->
  `stageS.K.branch2.{expand,depthwise,project}.{conv,batchnorm}`; `fc` -> `fc.dense`.

- `efficientnet` (efficientnet_b0) and `mobilenet_v3` (mobilenet_v3_large/small): an inverted
  residual's `block` is an nn.Sequential of Conv2dNormActivations (`.0` conv, `.1` bn) and at
  most one SqueezeExcitation (`fc1`, `fc2`); its conv-bn modules are, in order, `expand` (only
  where the block expands), `depthwise` and `project`, and its SqueezeExcitation is `gate`
  (`fc1`/`fc2` -> `gate.conv`/`.conv_2`), all read off the keys. EfficientNet:
  `features.0` -> `stem`, `features.K.I.block` -> `stageK.I.{part}` (`stageK.{part}` for a stage
  of one block), `features.8` -> `last`, `classifier.1` -> `head.dense`. MobileNetV3: the
  blocks are `features.1` .. `features.N` -> `block1` .. `blockN`, their conv-bn layers spec
  `layer` calls (`blockK.expand.conv.conv`, `blockK.depthwise.conv.batchnorm`) but the
  projection (`blockK.project.conv`); `features.0` / `features.N+1` -> `stem.conv` /
  `last.conv`; `classifier.0` / `classifier.3` -> `head.dense` / `head.dense_2`.
- `convnext` (convnext_tiny): `features.0.0`/`.0.1` -> `stem.conv`/`stem.layernorm`; the
  downsampling `features.{2,4,6}.0`/`.1` -> `down{2,3,4}.layernorm`/`.conv`; block B of stage S
  (`features.{1,3,5,7}.B`, S = 1..4): `block.0/2/3/5` (depthwise conv, LayerNorm, Linear,
  Linear) -> `stageS.B.branch.{conv,layernorm,conv_2,conv_3}` and `layer_scale` ->
  `stageS.B.branch.layer_scale.scale`; `classifier.0`/`.2` -> `head.layernorm`/`head.dense`.
- `regnet` (regnet_y_400mf): `stem.0`/`.1` -> `stem.conv`/`stem.batchnorm`;
  `trunk_output.blockS.blockS-B` -> `blockS.B` (`blockS` for a stage of one block), whose
  `proj.0/1`, `f.a.0/1`, `f.b.0/1`, `f.c.0/1` -> `.proj`, `.a`, `.b`, `.c` `.conv`/`.batchnorm`
  and `f.se.fc1`/`fc2` -> `.se.conv`/`.se.conv_2`; `fc` -> `head.dense`.
- `vit` (vit_b_16, and a pocket VisionTransformer of any depth and width): `conv_proj` ->
  `patches.conv`, `class_token` -> `patches.class_token.token`, `encoder.pos_embedding` ->
  `patches.position_embedding.embedding`; `encoder.layers.encoder_layer_I.{ln_1,
  self_attention, ln_2, mlp.0, mlp.3}` -> `encoder.I.attn.{layernorm, attention}`,
  `encoder.I.mlp.{layernorm, dense, dense_2}` (the attention's own names, `in_proj_weight`,
  `out_proj.bias`, ..., kept); `encoder.ln` -> `head.layernorm`; `heads.head` -> `head.dense`.

`num_batches_tracked` (a counter, not a tensor of the network) is left out on both sides.
`mapped_state_dict` applies a family's rule and checks that it is a bijection between every
tensor of both models with equal shapes, or shapes that differ only by trailing dimensions of
size 1, which it reshapes to ours (the same values in the same order): ConvNeXt's layer scale,
(C, 1, 1) in torchvision and (C,) here, and its blocks' Linear weights, (out, in) in
torchvision and (out, in, 1, 1) for our 1x1 convs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

SKIP = "num_batches_tracked"
# torchvision's VGG configurations "A" (vgg11) and "D" (vgg16): conv widths, "M" = max pool
VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# torchvision's MNASNet stacks (repeats of each `_stack`) after the separable stem, layers 8..13
MNASNET_REPEATS = (3, 3, 3, 2, 4, 1)
# torchvision's MobileNetV2 inverted_residual_setting: expansion t, channels c, repeats n, stride s
MOBILENET_V2_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


class UnmappedKey(KeyError):
    """A torchvision key that the family's rule does not cover."""


def _fail(key: str) -> None:
    raise UnmappedKey(f"no rule maps torchvision key {key!r}")


# ----------------------------------------------------------------------------- families


def resnet(key: str) -> str:
    """resnet18 / resnet50 (BasicBlock and Bottleneck alike)."""
    if m := re.fullmatch(r"(conv1|bn1)\.(\w+)", key):
        return f"stem.{'conv' if m[1] == 'conv1' else 'batchnorm'}.{m[2]}"
    if m := re.fullmatch(r"fc\.(weight|bias)", key):
        return f"head.dense.{m[1]}"
    if m := re.fullmatch(r"layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)", key):
        layer, block, kind, k, tensor = m.groups()
        label = "conv" if kind == "conv" else "batchnorm"
        return f"layer{layer}.{block}.conv{k}.{label}.{tensor}"
    if m := re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([01])\.(\w+)", key):
        layer, block, index, tensor = m.groups()
        return f"layer{layer}.{block}.downsample.{('conv', 'batchnorm')[int(index)]}.{tensor}"
    _fail(key)


def _vgg_stages(cfg: tuple) -> list[int]:
    """The number of convs of each stage (between the "M"s) of a configuration."""
    counts, convs = [], 0
    for item in cfg:
        if item == "M":
            counts.append(convs)
            convs = 0
        else:
            convs += 1
    return counts


def _vgg_features(cfg: tuple, batch_norm: bool) -> dict[int, str]:
    """features index -> our `stage{s}[_{c}]_conv.<label>` prefix, as torchvision's make_layers."""
    table, index = {}, 0
    for stage, convs in enumerate(_vgg_stages(cfg), start=1):
        for conv in range(convs):
            prefix = f"stage{stage}.{conv}.conv" if convs > 1 else f"stage{stage}.conv"
            table[index] = f"{prefix}.conv"
            if batch_norm:
                table[index + 1] = f"{prefix}.batchnorm"
            index += 3 if batch_norm else 2  # conv, [bn,] relu
        index += 1  # the stage's max pool
    return table


def vgg(batch_norm: bool, cfg: tuple = VGG16_CFG) -> Callable[[str], str]:
    """vgg16 (batch_norm=False) / vgg16_bn (True); vgg11 with cfg=VGG11_CFG."""
    features = _vgg_features(cfg, batch_norm)
    # classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear
    classifier = {0: "fc6", 3: "fc7", 6: "fc8"}

    def rename(key: str) -> str:
        if (m := re.fullmatch(r"features\.(\d+)\.(\w+)", key)) and int(m[1]) in features:
            return f"{features[int(m[1])]}.{m[2]}"
        if (m := re.fullmatch(r"classifier\.(\d+)\.(\w+)", key)) and int(m[1]) in classifier:
            return f"{classifier[int(m[1])]}.dense.{m[2]}"
        _fail(key)

    return rename


def googlenet(key: str) -> str:
    """googlenet(aux_logits=False)."""
    layer = {"conv": "conv", "bn": "batchnorm"}
    if m := re.fullmatch(r"(conv\d)\.(conv|bn)\.(\w+)", key):
        return f"{m[1]}.conv.{layer[m[2]]}.{m[3]}"
    if m := re.fullmatch(r"fc\.(weight|bias)", key):
        return f"fc.dense.{m[1]}"
    if m := re.fullmatch(r"(inception\d[a-e])\.branch1\.(conv|bn)\.(\w+)", key):
        return f"{m[1]}.branch1.conv.{layer[m[2]]}.{m[3]}"
    if m := re.fullmatch(r"(inception\d[a-e])\.branch([23])\.([01])\.(conv|bn)\.(\w+)", key):
        return f"{m[1]}.branch{m[2]}.{m[3]}.conv.{layer[m[4]]}.{m[5]}"
    if m := re.fullmatch(r"(inception\d[a-e])\.branch4\.1\.(conv|bn)\.(\w+)", key):
        return f"{m[1]}.branch4.conv.{layer[m[2]]}.{m[3]}"
    _fail(key)


def squeezenet(keys: Iterable[str]) -> Callable[[str], str]:
    """squeezenet1_0 / squeezenet1_1: the Fire modules are numbered by their order in features."""
    fires = sorted(
        {int(m[1]) for k in keys if (m := re.fullmatch(r"features\.(\d+)\.\w+\.\w+", k))}
    )
    fire_name = {index: f"fire{k + 2}" for k, index in enumerate(fires)}

    def rename(key: str) -> str:
        if m := re.fullmatch(r"features\.0\.(weight|bias)", key):
            return f"conv1.conv.{m[1]}"
        if m := re.fullmatch(r"classifier\.1\.(weight|bias)", key):
            return f"head.conv.{m[1]}"
        m = re.fullmatch(r"features\.(\d+)\.(squeeze|expand1x1|expand3x3)\.(weight|bias)", key)
        if m and int(m[1]) in fire_name:
            return f"{fire_name[int(m[1])]}.{m[2]}.conv.{m[3]}"
        _fail(key)

    return rename


def _mobilenet_v2_blocks() -> dict[int, tuple[str, int]]:
    """features index (1..17) -> (our statement prefix, expansion t)."""
    table, index = {}, 1
    for stage, (t, _c, n, _s) in enumerate(MOBILENET_V2_SETTING, start=1):
        for i in range(n):
            table[index] = (f"block{stage}.{i}" if n > 1 else f"block{stage}", t)
            index += 1
    return table


def mobilenet_v2(key: str) -> str:
    """mobilenet_v2 (width 1.0)."""
    blocks = _mobilenet_v2_blocks()
    last = len(blocks) + 1  # features.18: the final 1x1 ConvBNReLU6
    if m := re.fullmatch(r"features\.(\d+)\.([01])\.(\w+)", key):
        index, part, tensor = int(m[1]), ("conv", "batchnorm")[int(m[2])], m[3]
        if index == 0:
            return f"stem.{part}.{tensor}"
        if index == last:
            return f"last.{part}.{tensor}"
    if m := re.fullmatch(r"classifier\.1\.(weight|bias)", key):
        return f"head.dense.{m[1]}"
    if (m := re.fullmatch(r"features\.(\d+)\.conv\.(\d)(?:\.(\d))?\.(\w+)", key)) and int(
        m[1]
    ) in blocks:
        prefix, t = blocks[int(m[1])]
        stages = ["expand", "depthwise"] if t != 1 else ["depthwise"]
        position, sub, tensor = int(m[2]), m[3], m[4]
        if sub is not None and position < len(stages):  # a ConvBNActivation: .0 conv, .1 bn
            return f"{prefix}.{stages[position]}.{('conv', 'batchnorm')[int(sub)]}.{tensor}"
        if sub is None and position - len(stages) in (0, 1):  # projection conv, then its bn
            return f"{prefix}.project.{('conv', 'batchnorm')[position - len(stages)]}.{tensor}"
    _fail(key)


def densenet(key: str) -> str:
    """densenet121 (and the other torchvision DenseNets: the rule does not fix the depth)."""
    if m := re.fullmatch(r"features\.(conv0|norm0)\.(\w+)", key):
        return f"stem.{'conv' if m[1] == 'conv0' else 'batchnorm'}.{m[2]}"
    if m := re.fullmatch(r"features\.norm5\.(\w+)", key):
        return f"head.batchnorm.{m[1]}"
    if m := re.fullmatch(r"classifier\.(weight|bias)", key):
        return f"head.dense.{m[1]}"
    if m := re.fullmatch(
        r"features\.denseblock(\d)\.denselayer(\d+)\.(norm|conv)([12])\.(\w+)", key
    ):
        block, layer, kind, k, tensor = m.groups()
        label = {"norm": "batchnorm", "conv": "conv"}[kind] + ("_2" if k == "2" else "")
        return f"denseblock{block}.{int(layer) - 1}.new.{label}.{tensor}"
    if m := re.fullmatch(r"features\.transition(\d)\.(norm|conv)\.(\w+)", key):
        return f"transition{m[1]}.down.{'batchnorm' if m[2] == 'norm' else 'conv'}.{m[3]}"
    _fail(key)


def inception_v3(key: str) -> str:
    """inception_v3(aux_logits=False): torchvision's module names, lower-cased."""
    if m := re.fullmatch(r"fc\.(weight|bias)", key):
        return f"fc.dense.{m[1]}"
    if m := re.fullmatch(r"((?:Conv2d|Mixed)_[\w.]+?)\.(conv|bn)\.(\w+)", key):
        module, kind, tensor = m.groups()
        label = "conv" if kind == "conv" else "batchnorm"
        return f"{module.lower()}.conv.{label}.{tensor}"
    _fail(key)


def _mnasnet_stacks() -> dict[int, str]:
    """`layers.{8..13}.{i}` -> our `stack{k}[_{i}]` statement prefix."""
    table = {}
    for k, repeats in enumerate(MNASNET_REPEATS, start=1):
        for i in range(repeats):
            table[(7 + k, i)] = f"stack{k}.{i}" if repeats > 1 else f"stack{k}"
    return table


# torchvision's MNASNet `layers` indices with tensors, outside the stacks
MNASNET_LAYERS = {
    0: "stem.conv",
    1: "stem.batchnorm",
    3: "separable.conv",
    4: "separable.batchnorm",
    6: "separable.conv_2",
    7: "separable.batchnorm_2",
    14: "last.conv",
    15: "last.batchnorm",
}
# inside an _InvertedResidual's `layers`: pointwise conv/bn, depthwise conv/bn, linear conv/bn
MNASNET_BLOCK = {
    0: "expand.conv",
    1: "expand.batchnorm",
    3: "depthwise.conv",
    4: "depthwise.batchnorm",
    6: "project.conv",
    7: "project.batchnorm",
}


def mnasnet(key: str) -> str:
    """mnasnet1_0 (torchvision's version 2 layout)."""
    stacks = _mnasnet_stacks()
    if m := re.fullmatch(r"classifier\.1\.(weight|bias)", key):
        return f"head.dense.{m[1]}"
    if (m := re.fullmatch(r"layers\.(\d+)\.(\w+)", key)) and int(m[1]) in MNASNET_LAYERS:
        return f"{MNASNET_LAYERS[int(m[1])]}.{m[2]}"
    m = re.fullmatch(r"layers\.(\d+)\.(\d+)\.layers\.(\d)\.(\w+)", key)
    if m and (int(m[1]), int(m[2])) in stacks and int(m[3]) in MNASNET_BLOCK:
        return f"{stacks[int(m[1]), int(m[2])]}.{MNASNET_BLOCK[int(m[3])]}.{m[4]}"
    _fail(key)


# inside a ShuffleNetV2 InvertedResidual's branch1 / branch2 (nn.Sequential indices)
SHUFFLENET_BRANCH1 = {0: "conv", 1: "batchnorm", 2: "conv_2", 3: "batchnorm_2"}
SHUFFLENET_BRANCH2 = {
    0: "expand.conv",
    1: "expand.batchnorm",
    3: "depthwise.conv",
    4: "depthwise.batchnorm",
    5: "project.conv",
    6: "project.batchnorm",
}


def shufflenet_v2(key: str) -> str:
    """shufflenet_v2_x1_0 (any width: the rule does not fix the channels)."""
    if m := re.fullmatch(r"fc\.(weight|bias)", key):
        return f"fc.dense.{m[1]}"
    if m := re.fullmatch(r"(conv1|conv5)\.([01])\.(\w+)", key):
        return f"{m[1]}.{('conv', 'batchnorm')[int(m[2])]}.{m[3]}"
    m = re.fullmatch(r"(stage\d)\.(\d+)\.branch([12])\.(\d)\.(\w+)", key)
    table = (SHUFFLENET_BRANCH1, SHUFFLENET_BRANCH2)[int(m[3]) - 1] if m else {}
    if m and int(m[4]) in table:
        label = table[int(m[4])]
        prefix = f"{m[1]}.{m[2]}.branch{m[3]}"
        return f"{prefix}.{label}.{m[5]}"
    _fail(key)


def _inverted_residual_parts(keys: Iterable[str], block: str) -> dict[str, str]:
    """`{block prefix}.{j}` -> `expand`/`depthwise`/`gate`/`project`, for every block in keys.

    `block` is a regular expression matching a block's nn.Sequential prefix (as group 1).
    """
    convs: dict[str, list[int]] = {}
    gates: dict[str, int] = {}
    for key in keys:
        if m := re.fullmatch(rf"({block})\.(\d+)\.0\.weight", key):
            convs.setdefault(m[1], []).append(int(m[2]))
        elif m := re.fullmatch(rf"({block})\.(\d+)\.fc1\.weight", key):
            gates[m[1]] = int(m[2])
    parts = {}
    for prefix, indices in convs.items():
        names = ("expand", "depthwise", "project")[3 - len(indices) :]
        parts.update(
            {f"{prefix}.{j}": name for j, name in zip(sorted(indices), names, strict=True)}
        )
    parts.update({f"{prefix}.{j}": "gate" for prefix, j in gates.items()})
    return parts


def _inverted_residual_tensor(key: str, parts: dict[str, str], statement: str) -> str | None:
    """A block tensor's `{statement}_{part}.{label}.{tensor}`, or None if not a block's."""
    m = re.fullmatch(r"(.+)\.(0|1|fc1|fc2)\.(\w+)", key)
    if not m or m[1] not in parts:
        return None
    label = {"0": "conv", "1": "batchnorm", "fc1": "conv", "fc2": "conv_2"}[m[2]]
    return f"{statement}.{parts[m[1]]}.{label}.{m[3]}"


EFFICIENTNET_BLOCK = r"features\.\d+\.\d+\.block"


def efficientnet(keys: Iterable[str]) -> Callable[[str], str]:
    """efficientnet_b0 (the stages and their repeats are read off the keys)."""
    keys = list(keys)
    parts = _inverted_residual_parts(keys, EFFICIENTNET_BLOCK)
    repeats: dict[str, set[str]] = {}
    for prefix in parts:
        stage, index = prefix.split(".")[1:3]
        repeats.setdefault(stage, set()).add(index)
    ends = {"0": "stem", str(len(repeats) + 1): "last"}

    def rename(key: str) -> str:
        if m := re.fullmatch(r"classifier\.1\.(weight|bias)", key):
            return f"head.dense.{m[1]}"
        if (m := re.fullmatch(r"features\.(\d+)\.([01])\.(\w+)", key)) and m[1] in ends:
            return f"{ends[m[1]]}.{('conv', 'batchnorm')[int(m[2])]}.{m[3]}"
        m = re.fullmatch(r"features\.(\d+)\.(\d+)\.block\..+", key)
        if m and m[1] in repeats:
            statement = f"stage{m[1]}.{m[2]}" if len(repeats[m[1]]) > 1 else f"stage{m[1]}"
            if name := _inverted_residual_tensor(key, parts, statement):
                return name
        _fail(key)

    return rename


def mobilenet_v3(keys: Iterable[str]) -> Callable[[str], str]:
    """mobilenet_v3_large / mobilenet_v3_small (the blocks are read off the keys)."""
    parts = _inverted_residual_parts(keys, r"features\.\d+\.block")
    blocks = {prefix.split(".")[1] for prefix in parts}
    ends = {"0": "stem.conv", str(len(blocks) + 1): "last.conv"}
    # the `layer` calls add `_conv`; the projection is a plain statement
    parts = {
        p: f"{name}.conv" if name in ("expand", "depthwise") else name for p, name in parts.items()
    }

    def rename(key: str) -> str:
        if m := re.fullmatch(r"classifier\.([03])\.(weight|bias)", key):
            return f"head.{'dense' if m[1] == '0' else 'dense_2'}.{m[2]}"
        if (m := re.fullmatch(r"features\.(\d+)\.([01])\.(\w+)", key)) and m[1] in ends:
            return f"{ends[m[1]]}.{('conv', 'batchnorm')[int(m[2])]}.{m[3]}"
        m = re.fullmatch(r"features\.(\d+)\.block\..+", key)
        if m and m[1] in blocks and (name := _inverted_residual_tensor(key, parts, f"block{m[1]}")):
            return name
        _fail(key)

    return rename


# torchvision's ConvNeXt `block` indices with tensors -> our layer labels in the branch
CONVNEXT_BLOCK = {0: "conv", 2: "layernorm", 3: "conv_2", 5: "conv_3"}


def convnext(key: str) -> str:
    """convnext_tiny (any depths and widths: the rule fixes neither)."""
    if m := re.fullmatch(r"features\.0\.([01])\.(\w+)", key):
        return f"stem.{('conv', 'layernorm')[int(m[1])]}.{m[2]}"
    if m := re.fullmatch(r"features\.([246])\.([01])\.(\w+)", key):
        return f"down{int(m[1]) // 2 + 1}.{('layernorm', 'conv')[int(m[2])]}.{m[3]}"
    if m := re.fullmatch(r"features\.([1357])\.(\d+)\.layer_scale", key):
        return f"stage{(int(m[1]) + 1) // 2}.{m[2]}.branch.layer_scale.scale"
    m = re.fullmatch(r"features\.([1357])\.(\d+)\.block\.(\d)\.(\w+)", key)
    if m and int(m[3]) in CONVNEXT_BLOCK:
        stage = (int(m[1]) + 1) // 2
        return f"stage{stage}.{m[2]}.branch.{CONVNEXT_BLOCK[int(m[3])]}.{m[4]}"
    if m := re.fullmatch(r"classifier\.([02])\.(\w+)", key):
        return f"head.{'layernorm' if m[1] == '0' else 'dense'}.{m[2]}"
    _fail(key)


VIT_LAYER = {
    "ln_1": "attn.layernorm",
    "self_attention": "attn.attention",
    "ln_2": "mlp.layernorm",
    "mlp.0": "mlp.dense",
    "mlp.3": "mlp.dense_2",
}
VIT_FIXED = {
    "class_token": "patches.class_token.token",
    "encoder.pos_embedding": "patches.position_embedding.embedding",
}


def vit(key: str) -> str:
    """vit_b_16 (any depth and width: the rule fixes neither)."""
    if key in VIT_FIXED:
        return VIT_FIXED[key]
    if m := re.fullmatch(r"conv_proj\.(\w+)", key):
        return f"patches.conv.{m[1]}"
    pattern = r"encoder\.layers\.encoder_layer_(\d+)\.(ln_1|self_attention|ln_2|mlp\.[03])\.(.+)"
    if m := re.fullmatch(pattern, key):
        return f"encoder.{m[1]}.{VIT_LAYER[m[2]]}.{m[3]}"
    if m := re.fullmatch(r"(encoder\.ln|heads\.head)\.(\w+)", key):
        return f"head.{'layernorm' if m[1] == 'encoder.ln' else 'dense'}.{m[2]}"
    _fail(key)


def regnet(keys: Iterable[str]) -> Callable[[str], str]:
    """regnet_y_400mf: a stage of one block is a single call, its statements not numbered."""
    blocks = {m[1] for k in keys if (m := re.match(r"trunk_output\.(block\d+)\.block\d+-\d+", k))}
    single = {
        stage
        for stage in blocks
        if not any(k.startswith(f"trunk_output.{stage}.{stage}-1.") for k in keys)
    }

    def rename(key: str) -> str:
        if m := re.fullmatch(r"stem\.([01])\.(\w+)", key):
            return f"stem.{('conv', 'batchnorm')[int(m[1])]}.{m[2]}"
        if m := re.fullmatch(r"fc\.(weight|bias)", key):
            return f"head.dense.{m[1]}"
        m = re.fullmatch(r"trunk_output\.(block\d+)\.block\d+-(\d+)\.(.+)\.(\w+)", key)
        if not m:
            _fail(key)
        prefix = m[1] if m[1] in single else f"{m[1]}.{m[2]}"
        if p := re.fullmatch(r"(?:f\.)?(proj|a|b|c)\.([01])", m[3]):
            return f"{prefix}.{p[1]}.{('conv', 'batchnorm')[int(p[2])]}.{m[4]}"
        if p := re.fullmatch(r"f\.se\.fc([12])", m[3]):
            return f"{prefix}.se.{('conv', 'conv_2')[int(p[1]) - 1]}.{m[4]}"
        _fail(key)

    return rename


# ----------------------------------------------------------------------------- per model

# zoo spec stem -> (torchvision builder name, builder keyword arguments, rule factory)
MODELS: dict[str, tuple[str, dict, Callable[[Iterable[str]], Callable[[str], str]]]] = {
    "vgg16": ("vgg16", {}, lambda keys: vgg(batch_norm=False)),
    "vgg16_bn": ("vgg16_bn", {}, lambda keys: vgg(batch_norm=True)),
    "resnet18": ("resnet18", {}, lambda keys: resnet),
    "resnet50": ("resnet50", {}, lambda keys: resnet),
    "googlenet": (
        "googlenet",
        {"aux_logits": False, "init_weights": True},
        lambda keys: googlenet,
    ),
    "squeezenet1_0": ("squeezenet1_0", {}, squeezenet),
    "squeezenet1_1": ("squeezenet1_1", {}, squeezenet),
    "mobilenet_v2": ("mobilenet_v2", {}, lambda keys: mobilenet_v2),
    "densenet121": ("densenet121", {}, lambda keys: densenet),
    "vgg11": ("vgg11", {}, lambda keys: vgg(batch_norm=False, cfg=VGG11_CFG)),
    "resnet34": ("resnet34", {}, lambda keys: resnet),
    "resnet101": ("resnet101", {}, lambda keys: resnet),
    "resnext50_32x4d": ("resnext50_32x4d", {}, lambda keys: resnet),
    "wide_resnet50_2": ("wide_resnet50_2", {}, lambda keys: resnet),
    "densenet169": ("densenet169", {}, lambda keys: densenet),
    "inception_v3": (
        "inception_v3",
        {"aux_logits": False, "transform_input": False, "init_weights": True},
        lambda keys: inception_v3,
    ),
    "mnasnet1_0": ("mnasnet1_0", {}, lambda keys: mnasnet),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", {}, lambda keys: shufflenet_v2),
    "efficientnet_b0": ("efficientnet_b0", {}, efficientnet),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}, mobilenet_v3),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}, mobilenet_v3),
    "convnext_tiny": ("convnext_tiny", {}, lambda keys: convnext),
    "regnet_y_400mf": ("regnet_y_400mf", {}, regnet),
    "vit_b_16": ("vit_b_16", {}, lambda keys: vit),
}


def key_mapping(theirs: dict, ours: dict, rule: Callable[[str], str]) -> dict[str, str]:
    """{torchvision key: our key}, checked to be a shape-preserving bijection of all tensors
    (shapes equal but for trailing dimensions of size 1).

    `theirs` and `ours` map keys to shapes (or tensors); `num_batches_tracked` is skipped.
    Raises AssertionError naming the keys that do not pair up.
    """
    theirs = {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in theirs.items()}
    ours = {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in ours.items()}
    theirs = {k: s for k, s in theirs.items() if not k.endswith(SKIP)}
    ours = {k: s for k, s in ours.items() if not k.endswith(SKIP)}
    mapping = {k: rule(k) for k in theirs}
    targets = list(mapping.values())
    doubled = sorted({t for t in targets if targets.count(t) > 1})
    assert not doubled, f"several torchvision keys map to {doubled[:5]}"
    missing = sorted(set(targets) - set(ours))
    assert not missing, f"mapped to keys the generated model lacks: {missing[:5]}"
    uncovered = sorted(set(ours) - set(targets))
    assert not uncovered, f"generated tensors no torchvision key maps to: {uncovered[:5]}"
    wrong = [
        (k, theirs[k], t, ours[t])
        for k, t in mapping.items()
        if _without_trailing_ones(theirs[k]) != _without_trailing_ones(ours[t])
    ]
    assert not wrong, f"shapes differ (theirs -> ours): {wrong[:5]}"
    return mapping


def _without_trailing_ones(shape: tuple) -> tuple:
    """The shape without its trailing dimensions of size 1: (C, 1, 1) -> (C,)."""
    while shape and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def mapped_state_dict(torchvision_state: dict, our_state: dict, rule: Callable[[str], str]):
    """torchvision's tensors under our keys, ready for `load_state_dict(strict=True)`.

    Our own `num_batches_tracked` counters are kept, so that strict loading sees every key;
    a tensor whose shape differs from ours by trailing 1s is reshaped to ours.
    """
    mapping = key_mapping(torchvision_state, our_state, rule)
    state = {
        mapping[k]: v.reshape(our_state[mapping[k]].shape)
        for k, v in torchvision_state.items()
        if k in mapping
    }
    state.update({k: v for k, v in our_state.items() if k.endswith(SKIP)})
    return state
