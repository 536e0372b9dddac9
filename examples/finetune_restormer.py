"""Fine-tune Restormer with PIP: one all-in-one model from a single-degradation checkpoint.

Restormer (Zamir et al., CVPR 2022; swz30/Restormer) releases checkpoints per degradation, e.g.
real_denoising.pth, gaussian_color_denoising_blind.pth, deraining.pth, motion_deblurring.pth.
Its code and weights are licensed for NON-COMMERCIAL use only: pip-adapter reaches them through
the optional spandrel_extra_arches package (``pip install 'pip-adapter[examples]'``) and
contains none of their code.

    python examples/finetune_restormer.py --checkpoint real_denoising.pth --steps 2000
    python examples/finetune_restormer.py --smoke       # tiny model, 3 steps: checks the set-up

The preset puts PIP on the skip half of the features each decoder level receives (1.7% more
parameters for the full-size model). Restormer's own recipe uses AdamW at 3e-4 on 128² patches;
for an adapter on a frozen backbone the same rate works. Inputs of any size are padded to a
multiple of 8 and cropped back.
"""

import sys

from pip_adapter.cli.train import example_main

if __name__ == "__main__":
    sys.exit(example_main("restormer", __doc__, lr=3e-4, patch_size=128, out="runs/restormer-pip"))
