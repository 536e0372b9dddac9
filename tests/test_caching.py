"""The inference cache: values of the parameters alone are reused at inference, never stale."""

import copy
import gc
import pickle
import weakref

import pytest
import torch
from backbones import nafnet
from reference import compact_unit_reference

import pip_adapter as pa
from pip_adapter import PromptInPrompt, caching
from pip_adapter.caching import CacheGroup, ParameterCache
from pip_adapter.unit.lowrank import DegradationLowRank

WEIGHTS = torch.tensor([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])


def _unit(seed: int = 0) -> PromptInPrompt:
    torch.manual_seed(seed)
    unit = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, heads=2)
    with torch.no_grad():
        for p in unit.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return unit.eval()


class QueryCount:
    """How many times a unit computed its prompt-to-prompt queries (the cached value)."""

    def __init__(self, unit: PromptInPrompt) -> None:
        self.calls = 0
        unit.prompt_to_prompt.norm_query.register_forward_hook(self._count)

    def _count(self, *_) -> None:
        self.calls += 1


def _check_formula(unit: PromptInPrompt, x: torch.Tensor) -> None:
    weights = WEIGHTS.to(x.dtype)
    with torch.no_grad():
        torch.testing.assert_close(
            unit(x, weights), compact_unit_reference(unit, x, weights), rtol=1e-5, atol=1e-5
        )


def test_queries_are_computed_once_at_inference():
    unit, x = _unit(), torch.randn(2, 12, 9, 7)
    count = QueryCount(unit)
    with torch.inference_mode():
        first = unit(x, WEIGHTS)
    with torch.no_grad():  # a value kept in inference mode serves plain no_grad too
        assert torch.equal(unit(x, WEIGHTS), first)
        assert torch.equal(unit(x, WEIGHTS), first)
    assert count.calls == 1
    _check_formula(unit, x)
    assert count.calls == 1


def _optimizer_step(unit, x):
    optimizer = torch.optim.AdamW(unit.parameters(), lr=1e-2)
    unit(x, WEIGHTS).square().mean().backward()
    optimizer.step()


def _load_other_weights(unit, x):
    unit.load_state_dict(_unit(seed=1).state_dict())


def _edit_through_data(unit, x):
    unit.basic_prompt.prompt.data[0, 0, 0, 0] += 1.0  # no version counter sees this


def _edit_temperature_in_place(unit, x):
    with torch.no_grad():
        unit.prompt_to_prompt.attention.temperature.mul_(2.0)


def _swap_a_tensor(unit, x):
    norm = unit.prompt_to_prompt.norm_query
    norm.weight = torch.nn.Parameter(norm.weight.detach() * -1.0)


EDITS = [
    _optimizer_step,
    _load_other_weights,
    _edit_through_data,
    _edit_temperature_in_place,
    _swap_a_tensor,
]


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_any_change_of_the_parameters_computes_afresh(edit):
    unit, x = _unit(), torch.randn(2, 12, 9, 7)
    count = QueryCount(unit)
    _check_formula(unit, x)
    edit(unit, x)
    calls = count.calls
    _check_formula(unit, x)  # the reference never uses the cache
    assert count.calls == calls + 1
    _check_formula(unit, x)
    assert count.calls == calls + 1


def test_dtype_move_and_train_mode():
    unit, x = _unit(), torch.randn(2, 12, 8, 8)
    count = QueryCount(unit)
    _check_formula(unit, x)
    unit.double()
    _check_formula(unit, x.double())
    assert count.calls == 2
    unit.train()
    assert len(unit.prompt_to_prompt.inference_cache) == 0


def test_training_never_uses_the_cache():
    unit, x = _unit(), torch.randn(2, 12, 9, 7)
    count = QueryCount(unit)
    _check_formula(unit, x)
    unit(x, WEIGHTS).sum().backward()  # gradients on: computed again, with its graph
    assert count.calls == 2
    assert unit.basic_prompt.prompt.grad is not None
    assert unit.prompt_to_prompt.norm_query.weight.grad is not None


def test_autocast_keeps_its_own_value():
    unit = _unit()
    p2p, prompt = unit.prompt_to_prompt, unit.basic_prompt.prompt
    with torch.no_grad():
        full = p2p.queries(prompt)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = p2p.queries(prompt)
            expected = p2p.attention.scaled_queries(p2p.norm_query(prompt))
        assert p2p.queries(prompt) is full
    # the queries of bf16 products, scaled in float32 (the logits' precision)
    assert full[0].dtype == mixed[0].dtype == torch.float32
    assert not torch.equal(mixed[0], full[0])
    assert torch.equal(mixed[0], expected[0]) and mixed[1] is expected[1] is None


def test_values_are_compared_bit_by_bit():
    cache = ParameterCache()
    calls = []

    def get(t):
        return cache.get("key", [t], lambda: calls.append(1) or t.clone())

    t = torch.tensor([0.0, float("nan")])
    with torch.no_grad():
        get(t), get(t.clone())
        assert len(calls) == 1  # the same bits, NaN included
        get(torch.tensor([-0.0, float("nan")]))  # -0.0 == 0.0, but its bits differ
        get(t.double())
        assert len(calls) == 3
    get(t)  # gradients on: never kept
    assert len(calls) == 4


def _model(degradation_ffn_rank: int = 0) -> pa.PIPModel:
    torch.manual_seed(0)
    model = pa.inject_pip(nafnet(), stages="auto", degradation_ffn_rank=degradation_ffn_rank)
    with torch.no_grad():
        for p in model.pip_units.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _forward(model: pa.PIPModel, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x, degradation="rain")


def _counting_fingerprints(monkeypatch) -> list[int]:
    compared: list[int] = []
    fingerprint = caching._fingerprint
    monkeypatch.setattr(caching, "_fingerprint", lambda t: compared.append(1) or fingerprint(t))
    return compared


def test_a_model_checks_its_units_caches_once_per_forward(monkeypatch):
    model, x = _model(), torch.rand(1, 3, 16, 16)
    units = list(model.pip_units.values())
    assert len(units) >= 2
    counts = [QueryCount(unit) for unit in units]
    compared = _counting_fingerprints(monkeypatch)
    first = _forward(model, x)  # each unit computes its queries
    assert len(compared) == len(units)
    for _ in range(2):
        compared.clear()
        assert torch.equal(_forward(model, x), first)
        assert len(compared) == 1  # one comparison for every unit
    assert [count.calls for count in counts] == [1] * len(units)


@pytest.mark.parametrize(
    "edit",
    [_edit_through_data, _edit_temperature_in_place, _swap_a_tensor],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_model_never_serves_a_stale_value(edit):
    model, x = _model(), torch.rand(1, 3, 16, 16)
    for _ in range(2):  # into the path where the units rely on the model's check
        before = _forward(model, x)
    edit(next(iter(model.pip_units.values())), x)
    got = _forward(model, x)
    with torch.enable_grad():  # nothing is cached with gradients on
        expected = model(x, degradation="rain").detach()
    assert not torch.equal(expected, before)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def test_a_model_does_not_trust_a_value_kept_outside_its_checks():
    # a unit called alone computes from edited bits, and the edit is undone: the model then
    # sees the bits of its last check again, but the unit's kept value is the edited one's
    model, x = _model(), torch.rand(1, 3, 16, 16)
    for _ in range(2):
        before = _forward(model, x)
    unit = next(iter(model.pip_units.values()))
    prompt = unit.basic_prompt.prompt
    kept = prompt.detach().clone()
    prompt.data[0, 0, 0, 0] += 1.0
    with torch.no_grad():
        unit(torch.randn(1, unit.channels, 6, 6), torch.eye(unit.num_degradations)[:1])
    prompt.data.copy_(kept)
    assert torch.equal(_forward(model, x), before)


def test_a_cache_holds_its_sources_weakly():
    # a source made per call (a parameter cast to the feature's dtype) is freed with its call,
    # and the value is still reused for another tensor holding the same bits
    cache, group, calls = ParameterCache(), CacheGroup(), []
    bits = torch.randn(4)
    source = bits.clone()
    freed = weakref.ref(source)
    with torch.no_grad(), group.checked():
        cache.get("key", [source], lambda: calls.append(1) or bits.sum())
    del source
    gc.collect()
    assert freed() is None
    with torch.no_grad():
        for _ in range(2):
            with group.checked():  # the group leaves the freed source to the cache
                assert cache.get("key", [bits.clone()], bits.sum) == bits.sum()
    assert calls == [1]


def test_a_part_replaced_after_injection_joins_the_models_check(monkeypatch):
    model, x = _model(), torch.rand(1, 3, 16, 16)
    first = _forward(model, x)
    unit = next(iter(model.pip_units.values()))
    old = unit.prompt_to_prompt.inference_cache
    unit.prompt_to_prompt = copy.deepcopy(unit.prompt_to_prompt)  # a new cache, same values
    new = unit.prompt_to_prompt.inference_cache
    compared = _counting_fingerprints(monkeypatch)
    assert torch.equal(_forward(model, x), first)  # the new part computes once, and joins
    for _ in range(2):
        compared.clear()
        assert torch.equal(_forward(model, x), first)
        assert len(compared) == 1  # one comparison for every unit, the new part's included
    members = model._caches.caches
    assert any(c is new for c in members) and not any(c is old for c in members)


def _inference_caches(model: pa.PIPModel) -> list[ParameterCache]:
    return [m.inference_cache for m in model.pip_units.modules() if hasattr(m, "inference_cache")]


@pytest.mark.parametrize("rank", [0, 2])  # 2: the low-rank updates' products are kept too
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_model_copied_after_inference_computes_its_values_afresh(how, rank):
    model, x = _model(rank), torch.rand(1, 3, 16, 16)
    before = _forward(model, x)
    assert len(_inference_caches(model)) == len(model.pip_units) * (1 if rank == 0 else 3)
    clone = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    caches = _inference_caches(clone)
    assert [len(c) for c in caches] == [0] * len(caches)
    for _ in range(2):
        assert torch.equal(_forward(clone, x), before)


@pytest.mark.slow  # tracing the model: about 10 s
@pytest.mark.parametrize("rank", [0, 2])  # 2: the low-rank updates' products' cache too
def test_a_traced_model_reads_no_cache_state(rank):
    # torch.compile guards on what the traced code reads: a context variable read there (the
    # group's block) became a guard that calls Python at every call, and compiled NAFNet + PIP
    # took 1.84x the plain network on an H200 instead of 1.00x
    model, x = _model(rank), torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        explained = torch._dynamo.explain(model)(x, degradation="rain")
    assert explained.graph_count == 1 and explained.graph_break_count == 0
    assert [g.name for g in explained.out_guards if "()" in g.name] == []


def _ranked_unit(seed: int = 0) -> PromptInPrompt:
    torch.manual_seed(seed)
    unit = PromptInPrompt(12, 3, prompt_dim=8, prompt_size=4, heads=2, degradation_ffn_rank=2)
    with torch.no_grad():
        for p in unit.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return unit.eval()


def _mixed_updates(update: DegradationLowRank, weights: torch.Tensor) -> torch.Tensor:
    """``Σ_t w_bt B_t A_t`` from the factors as they are now (no cache)."""
    up, down = (torch.cat(table) for table in zip(*update.blocks, strict=True))
    return torch.einsum("bt,tor,tri->boi", weights.to(up.dtype), up, down)


def _check_updates(update: DegradationLowRank, weights: torch.Tensor) -> None:
    with torch.no_grad():
        for mixture in (weights, torch.eye(weights.shape[1])[:1]):  # a mixture, then a label
            torch.testing.assert_close(update(mixture), _mixed_updates(update, mixture))


def test_low_rank_products_are_computed_once_at_inference():
    update = _ranked_unit().prompt_to_feature.ffn_in_update
    with torch.inference_mode():
        kept = update.products()
    with torch.no_grad():
        assert update.products() is kept
    _check_updates(update, WEIGHTS)  # a changed mixture mixes the same products afresh
    with torch.no_grad():
        assert update.products() is kept


def _step_low_rank(update: DegradationLowRank) -> None:
    optimizer = torch.optim.AdamW(update.parameters(), lr=1e-2)
    update(WEIGHTS).square().sum().backward()
    assert update.up.grad.abs().sum() > 0 and update.down.grad.abs().sum() > 0
    optimizer.step()


def _edit_low_rank_through_data(update: DegradationLowRank) -> None:
    update.down.data[1, 0, 0] += 1.0  # no version counter sees this


def _load_other_low_rank(update: DegradationLowRank) -> None:
    update.load_state_dict(_ranked_unit(seed=1).prompt_to_feature.ffn_in_update.state_dict())


def _grow_low_rank(update: DegradationLowRank) -> None:
    up, _ = update.add_rows(torch.eye(3)[1:2])
    with torch.no_grad():
        up.add_(1.0)  # the new degradation's update differs from its start


LOW_RANK_EDITS = [_step_low_rank, _edit_low_rank_through_data, _load_other_low_rank, _grow_low_rank]


@pytest.mark.parametrize("edit", LOW_RANK_EDITS, ids=lambda f: f.__name__.strip("_"))
def test_a_change_of_the_low_rank_factors_computes_the_products_afresh(edit):
    update = _ranked_unit().prompt_to_feature.ffn_in_update
    with torch.no_grad():
        kept = update.products()
    edit(update)
    weights = torch.rand(2, update.num_degradations)
    _check_updates(update, weights)
    with torch.no_grad():
        assert update.products() is not kept


def test_low_rank_products_follow_dtype_train_mode_and_gradients():
    update = _ranked_unit().prompt_to_feature.ffn_in_update
    with torch.no_grad():
        kept = update.products()
    update.double()
    _check_updates(update, WEIGHTS.double())
    with torch.no_grad():
        assert update.products()[0].dtype == torch.float64
    update.train()
    assert len(update.inference_cache) == 0
    products = update.products()  # gradients on: computed with its graph, not kept
    assert products[0].requires_grad and products is not update.products()
    assert kept[0].dtype == torch.float32


def test_a_model_checks_its_low_rank_products_with_its_other_caches(monkeypatch):
    model, x = _model(degradation_ffn_rank=2), torch.rand(1, 3, 16, 16)
    compared = _counting_fingerprints(monkeypatch)
    first = _forward(model, x)
    for _ in range(2):
        compared.clear()
        assert torch.equal(_forward(model, x), first)
        assert len(compared) == 1  # one comparison for every unit's queries and products
    update = next(iter(model.pip_units.values())).prompt_to_feature.ffn_out_update
    update.up.data[1] += 1.0  # "rain"'s own update, edited through .data
    got = _forward(model, x)
    with torch.enable_grad():
        expected = model(x, degradation="rain").detach()
    assert not torch.equal(expected, first)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
