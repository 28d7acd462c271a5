"""bench/end_to_end.py with one more case, for bench/gpu_check.sh:

  resnet50   specs/zoo/resnet50.arch on the embedded synthetic data (224 x 224, 1000 classes),
             batch 8 on the CPU and 128 on CUDA; steps N1..N2 2..6 on the CPU, 4..12 on CUDA

Every flag, figure and table is end_to_end.py's (`--help` lists them); `--cases resnet50`
selects the new case.
"""

from __future__ import annotations

import end_to_end
from end_to_end import CASES, Case

CASES["resnet50"] = Case("specs/zoo/resnet50.arch", False, (8, 128), (2, 6), "embedded")

if __name__ == "__main__":
    end_to_end.main()
