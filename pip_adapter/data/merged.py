"""Several training sets as one, their degradation ids mapped into one vocabulary."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import ConcatDataset, Dataset

from pip_adapter.conditioning import check_degradation_names

__all__ = ["MergedDegradations"]


class MergedDegradations(Dataset):
    """The items of ``datasets`` one after the other, each item's degradation id mapped from
    its dataset's ``.degradations`` to its index in ``degradations``.

    This is how a model that learns new degradations is trained: ``degradations`` is the
    grown model's vocabulary, one dataset holds the new degradations and, for replay, another
    holds old ones (repeating a dataset weights its share). ``set_epoch`` is passed on.
    """

    def __init__(self, datasets: Sequence[Dataset], degradations: Sequence[str]) -> None:
        self.degradations = check_degradation_names(degradations)
        if not datasets:
            raise ValueError("datasets is empty")
        self.datasets = list(datasets)
        self._ids = []
        for index, dataset in enumerate(self.datasets):
            names = getattr(dataset, "degradations", None)
            if names is None:
                raise ValueError(f"datasets[{index}] has no .degradations to map its ids from")
            unknown = [n for n in names if n not in self.degradations]
            if unknown:
                raise ValueError(
                    f"datasets[{index}] has the degradations {unknown}, which are not among "
                    f"{list(self.degradations)}"
                )
            self._ids.append([self.degradations.index(n) for n in names])
        self._concat: ConcatDataset = ConcatDataset(self.datasets)

    def __len__(self) -> int:
        return len(self._concat)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if index < 0:
            index += len(self)
        part = next(i for i, end in enumerate(self._concat.cumulative_sizes) if index < end)
        degraded, clean, degradation_id = self._concat[index]
        return degraded, clean, self._ids[part][int(degradation_id)]

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
