"""Fine-tune NAFNet with PIP: one all-in-one model from a single-degradation checkpoint.

NAFNet (Chen et al., ECCV 2022) is released by megvii-research/NAFNet as BasicSR checkpoints,
e.g. NAFNet-SIDD-width32.pth (real denoising) or NAFNet-GoPro-width64.pth (deblurring),
``{"params": state_dict}``. spandrel reads them as they are (``params`` / ``params_ema``
wrappers and ``module.`` prefixes included).

    python examples/finetune_nafnet.py --checkpoint NAFNet-SIDD-width32.pth --steps 2000
    python examples/finetune_nafnet.py --smoke          # tiny model, 3 steps: checks the set-up

With --checkpoint only the adapter trains (add --full to fine-tune the backbone too); without
one, the official NAFNet-width32 configuration is built and trained from scratch. The adapter,
a degradation sensor and the recipe for the backbone are written to OUT/adapter, ready for
``pip-adapter eval --adapter OUT/adapter`` and ``pip-adapter restore ... --adapter OUT/adapter``.
"""

import sys

from pip_adapter.cli.train import example_main

if __name__ == "__main__":
    sys.exit(example_main("nafnet", __doc__, lr=5e-4, patch_size=128, out="runs/nafnet-pip"))
