"""Shared test settings: one CPU thread (two threads made tiny forwards ~100x slower here)."""

import torch

torch.set_num_threads(1)
