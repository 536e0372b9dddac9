"""Fine-tune SwinIR with PIP: one all-in-one model from a single-degradation checkpoint.

SwinIR (Liang et al., ICCVW 2021; JingyunLiang/SwinIR) releases colour-denoising checkpoints
such as 005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth (window 8, trained on 128² patches);
spandrel detects the configuration from the file.

    python examples/finetune_swinir.py --checkpoint 005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth
    python examples/finetune_swinir.py --smoke          # tiny model, 3 steps: checks the set-up

SwinIR has no encoder-decoder: the preset modulates the token sequences entering the second
half of its residual Swin groups (the stretch nearest to reconstruction). Patches should be a
multiple of the window size (8 here); SwinIR pads other sizes itself.
"""

import sys

from pip_adapter.cli.train import example_main

if __name__ == "__main__":
    sys.exit(example_main("swinir", __doc__, lr=2e-4, patch_size=128, out="runs/swinir-pip"))
