"""Run under torchrun by test_training: a few DDP training steps, then each rank saves its
weights so the test can compare them."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import pip_adapter as pa
from pip_adapter.backbones import build_backbone
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.training import TrainConfig, Trainer

torch.set_num_threads(1)
out = Path(sys.argv[1])
torch.manual_seed(int(__import__("os").environ["RANK"]))  # ranks start from different weights
model = pa.inject_pip(build_backbone("nafnet", "tiny"))
data = SyntheticAllInOne(patch_size=32, samples_per_degradation=4)
config = TrainConfig(steps=3, batch_size=2, lr=1e-3, progress=False)
trainer = Trainer(model, data, config)
trainer.fit()
state = {k: v.contiguous() for k, v in model.state_dict().items()}
save_file(state, out / f"rank{trainer.context.rank}.safetensors")
