#!/usr/bin/env bash
# bench/gpu_wheels.sh: download the wheels archdsl's compile path needs on the lent GPU
# machine (Python 3.12 on x86-64 Linux, no network, no lark or pydantic) into .whl/ at the
# repository root (git-ignored; `carry: [".whl"]` takes it along; bench/gpu_check.sh
# installs it there into /tmp/site). Run it here, where pip reaches PyPI, in the checkout
# the device tool sends. The versions are the ones installed here (pyproject.toml asks for
# lark and pydantic; pydantic needs pydantic-core (a compiled wheel, so its cp312 build),
# annotated-types, typing-inspection and typing-extensions >= 4.16, newer than the one there).
#   PYTHON (default: .venv/bin/python where it exists, else python3) says which install's
#   versions to take and runs pip; about 3 MB in all.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
PACKAGES=(lark pydantic pydantic-core annotated-types typing-inspection typing-extensions)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64
    manylinux2014_x86_64 manylinux1_x86_64)

pins=()
for name in "${PACKAGES[@]}"; do
    version=$("$PYTHON" -c "import importlib.metadata as m; print(m.version('$name'))")
    pins+=("$name==$version")
done
rm -rf .whl
"$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]/#/--platform=}" -d .whl "${pins[@]}"
du -ch .whl/*.whl
