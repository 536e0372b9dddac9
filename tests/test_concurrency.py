"""One model shared by threads (as a server's workers share it): each call gets its own
degradation, whatever the other threads are doing."""

import asyncio
import threading

import pytest
import torch
from backbones import build, train_conditioning

import pip_adapter as pa

# every form of degradation= a caller may use, each steering the units differently
DEGRADATIONS = ["noise", "rain", "haze", {"rain": 0.3, "blur": 0.7}, torch.tensor([4, 1])]


@pytest.fixture(scope="module", params=[(), ("noise",)], ids=["plain", "native-noise"])
def model(request):
    """The model, also with a native degradation: its gate travels with each call's weights."""
    model = pa.inject_pip(build("nafnet"), native_degradations=request.param)
    train_conditioning(model, steps=2)  # units away from the identity: outputs differ
    return model.eval()


def test_threads_sharing_one_model_get_their_own_degradation(model):
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = [model(x, degradation=d) for d in DEGRADATIONS]
    assert all(not torch.equal(expected[0], other) for other in expected[1:])
    rounds = 6
    outputs: dict[tuple[int, int], torch.Tensor] = {}
    start = threading.Barrier(len(DEGRADATIONS))

    def worker(index: int) -> None:
        start.wait()
        with torch.no_grad():
            for round_ in range(rounds):
                outputs[index, round_] = model(x, degradation=DEGRADATIONS[index])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(DEGRADATIONS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wrong = [key for key, out in outputs.items() if not torch.equal(out, expected[key[0]])]
    assert len(outputs) == rounds * len(DEGRADATIONS)
    assert wrong == []


def test_asyncio_tasks_sharing_one_model_get_their_own_degradation(model):
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = [model(x, degradation=d) for d in DEGRADATIONS[:3]]

    def call(degradation):
        with torch.no_grad():  # grad mode is per thread: set in the worker
            return model(x, degradation=degradation)

    async def restore(degradation):
        return await asyncio.to_thread(call, degradation)

    async def main():
        return await asyncio.gather(*(restore(d) for d in DEGRADATIONS[:3] * 3))

    results = asyncio.run(main())
    assert all(torch.equal(out, expected[i % 3]) for i, out in enumerate(results))


def test_a_nested_call_restores_the_outer_calls_weights(model):
    """A model called inside another call of itself (e.g. from a hook) does not leave its own
    weights behind for the rest of the outer call."""
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    first = model.plan[0].name
    inner: list[torch.Tensor] = []
    calls = []

    def nested(module, args):
        if not calls:  # once: the inner call runs this hook too
            calls.append(1)
            inner.append(model(x, degradation="noise"))

    handle = dict(model.backbone.named_modules())[first].register_forward_pre_hook(nested)
    try:
        with torch.no_grad():
            out = model(x, degradation="rain")
    finally:
        handle.remove()
    with torch.no_grad():
        assert torch.equal(out, model(x, degradation="rain"))
        assert torch.equal(inner[0], model(x, degradation="noise"))
    assert model._conditioning.weights is None
