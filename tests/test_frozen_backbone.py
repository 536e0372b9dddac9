"""A frozen backbone stays bit-exact through adapter training: parameters and buffers
(BatchNorm running statistics), outputs after unload(), and save -> load on a fresh copy."""

import copy

import pytest
import torch
from spandrel.architectures.DnCNN import DnCNN
from torch import nn

import pip_adapter as pa
from pip_adapter.data import SyntheticAllInOne
from pip_adapter.training import TrainConfig, Trainer

TASKS = ("noise", "rain")


class BatchNormUNet(nn.Module):
    """A user's two-level network with BatchNorm and dropout, the kind freezing must not move."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width))
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.middle = nn.Sequential(nn.BatchNorm2d(2 * width), nn.ReLU(), nn.Dropout2d(0.2))
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decoder = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.head = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(self.encoder(x))
        deep = self.middle(self.down(skip))
        return x + self.head(torch.relu(self.decoder(self.up(deep) + skip)))


def dncnn() -> tuple[nn.Module, list[str]]:
    return DnCNN(in_nc=3, out_nc=3, nc=8, nb=5), ["model.5", "model.8"]


def user_network() -> tuple[nn.Module, list[str]]:
    return BatchNormUNet(), ["decoder"]


NETWORKS = {"dncnn": dncnn, "batchnorm_unet": user_network}


def pretrained(name: str) -> tuple[nn.Module, list[str]]:
    """The network after a few training steps of its own, so its running statistics are not
    the initial ones (as in a real checkpoint), in eval mode as loaded checkpoints are."""
    torch.manual_seed(0)
    network, stages = NETWORKS[name]()
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-2)
    for _ in range(3):
        x = torch.rand(4, 3, 16, 16)
        optimizer.zero_grad()
        (network(x) - x).abs().mean().backward()
        optimizer.step()
    return network.eval(), stages


def stateful(network: nn.Module) -> list[nn.Module]:
    """The layers whose training mode moves buffers or adds noise: BatchNorm and dropout."""
    kinds = (nn.BatchNorm2d, nn.Dropout2d)
    found = [m for m in network.modules() if isinstance(m, kinds)]
    assert found
    return found


def backbone_tensors(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in network.state_dict().items()}


def assert_unchanged(network: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = network.state_dict()
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"backbone tensors changed: {changed}"


def train_with_trainer(model: pa.PIPModel, tmp_path) -> None:
    data = SyntheticAllInOne(degradations=TASKS, patch_size=16, samples_per_degradation=4, seed=0)
    config = TrainConfig(steps=4, batch_size=4, lr=1e-2, progress=False)
    Trainer(model, data, config, out_dir=tmp_path).fit()


def train_with_user_loop(model: pa.PIPModel, tmp_path) -> None:
    """A user's own loop: model.train(), an optimiser over *every* parameter, weight decay."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    model.train()
    for step in range(4):
        x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss = (model(x, degradation=["noise", "rain"] * 2) - x.flip(-1)).abs().mean()
        loss.backward()
        optimizer.step()


# units whose feed-forward has each degradation's own update: trained, saved and loaded alike
@pytest.mark.parametrize("options", [{}, {"degradation_ffn_rank": 2}])
@pytest.mark.parametrize("train", [train_with_trainer, train_with_user_loop])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_adapter_training_leaves_the_backbone_bit_exact(name, train, options, tmp_path):
    backbone, stages = pretrained(name)
    fresh_copy = copy.deepcopy(backbone)
    before = backbone_tensors(backbone)
    x = torch.rand(2, 3, 20, 20)
    with torch.no_grad():
        original_output = backbone(x)
    model = pa.inject_pip(backbone, stages=stages, degradations=TASKS, **options)
    model.freeze_backbone()
    units_before = {k: v.clone() for k, v in model.pip_units.state_dict().items()}

    train(model, tmp_path)

    assert_unchanged(backbone, before)
    trained = model.pip_units.state_dict()
    moved = {k for k in trained if not torch.equal(units_before[k], trained[k])}
    assert moved  # it did train
    assert ("ffn_in_update.up" in " ".join(moved)) == bool(options)  # the updates too
    model.eval()
    with torch.no_grad():
        rain = model(x, degradation="rain")
    assert not torch.equal(rain, original_output)

    model.save_adapter(tmp_path / "adapter")
    loaded = pa.load_adapter(fresh_copy, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.equal(loaded(x, degradation="rain"), rain)
        assert torch.equal(loaded(x, degradation="noise"), model(x, degradation="noise"))

    original = model.unload()
    with torch.no_grad():
        assert torch.equal(original(x), original_output)


def test_frozen_backbone_stays_in_eval_mode_and_unfreezing_restores_training_mode():
    backbone, stages = pretrained("batchnorm_unet")
    model = pa.inject_pip(backbone, stages=stages, degradations=TASKS).freeze_backbone()
    model.train()
    assert model.training and all(unit.training for unit in model.pip_units.modules())
    assert not any(module.training for module in stateful(backbone))
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():  # dropout in the frozen backbone is off: the same output twice
        assert torch.equal(model(x, degradation="rain"), model(x, degradation="rain"))

    model.unfreeze_backbone()
    assert all(p.requires_grad for p in backbone.parameters())
    assert all(module.training for module in backbone.modules())
    model.eval().train()
    assert all(module.training for module in backbone.modules())


def test_a_backbone_frozen_by_hand_is_kept_in_eval_mode_too():
    backbone, stages = pretrained("dncnn")
    model = pa.inject_pip(backbone, stages=stages, degradations=TASKS)
    backbone.requires_grad_(False)
    model.train()
    assert not any(module.training for module in stateful(backbone))
    assert all(unit.training for unit in model.pip_units.modules())


def test_full_fine_tuning_still_updates_batch_statistics():
    backbone, stages = pretrained("dncnn")
    before = backbone_tensors(backbone)
    model = pa.inject_pip(backbone, stages=stages, degradations=TASKS).train()
    assert all(module.training for module in backbone.modules())
    model(torch.rand(2, 3, 16, 16), degradation="rain")
    after = backbone.state_dict()
    assert not torch.equal(before["model.3.running_mean"], after["model.3.running_mean"])
