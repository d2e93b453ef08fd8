"""replace_activations / restore on a small CNN and a small random-weight BERT."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learnact


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GELU(), nn.Conv2d(16, 16, 3, padding=1),
                      nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    with torch.no_grad():  # pre-activations far wider than N(0, 1), like a trained network
        m[0].weight.mul_(6.0)
        m[2].weight.mul_(4.0)
    return m


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(1), b.flatten(1)).min())


def test_cnn_surgery_keeps_outputs_and_fine_tunes() -> None:
    model = _cnn()
    calib = [torch.randn(8, 3, 12, 12, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    x = torch.randn(32, 3, 12, 12, generator=torch.Generator().manual_seed(99)) * 1.1  # drawn differently
    with torch.no_grad():
        ref = model(x)
    rep = learnact.replace_activations(model, "hermite:degree=8", calibrate=calib)
    assert [e.old_type for e in rep.entries] == ["GELU", "SiLU"]
    assert all(isinstance(model[i], learnact.Hermite) for i in (1, 3))
    assert model[1].tails == "linear" and rep.entries[0].observed_range[1] > 3
    with torch.no_grad():
        out = model(x)
    assert _cos(out, ref) > 0.999
    assert "GELU" in str(rep) and "applied" in str(rep)
    # 20 steps of fine-tuning lower the loss by >= 10%, without NaN
    y = torch.randint(0, 10, (32,), generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(learnact.param_groups(model, lr=1e-3), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] <= 0.9 * losses[0]


def test_dry_run_and_restore() -> None:
    model = _cnn()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        ref = model(x)
    rep = learnact.replace_activations(model, "hermite:degree=4", dry_run=True)
    assert rep.dry_run and len(rep) == 2 and isinstance(model[1], nn.GELU)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in sd.items())
    assert set(model.state_dict()) == set(sd)
    rep = learnact.replace_activations(model, "tropical:degree=4", targets=["GELU"])
    assert len(rep) == 1 and isinstance(model[1], learnact.Tropical) and isinstance(model[3], nn.SiLU)
    learnact.restore(model, rep)
    with torch.no_grad():
        assert torch.equal(model(x), ref)
    assert isinstance(model[1], nn.GELU)


def test_bad_input_leaves_model_unchanged() -> None:
    model = _cnn()
    before = [type(m) for m in model]
    with pytest.raises(ValueError, match="no parameters"):
        learnact.replace_activations(model, "relu", fit=True)
    with pytest.raises(ValueError, match="no activation module matched"):
        learnact.replace_activations(nn.Linear(2, 2), "hermite")
    with pytest.raises(ValueError, match="unknown activation"):
        learnact.replace_activations(model, "hermitte")
    with pytest.raises(RuntimeError, match="calibration batch 2 failed"):
        learnact.replace_activations(model, "hermite", calibrate=[torch.randn(2, 3, 8, 8),
                                                                  torch.randn(2, 5, 8, 8)])
    with pytest.raises(TypeError, match="target must be"):
        learnact.fit(learnact.Hermite(3), object())
    assert [type(m) for m in model] == before and model.training
    swapped = learnact.replace_activations(model, "relu", fit=False)  # fixed swap is fine
    assert isinstance(model[1], nn.ReLU) and len(swapped) == 2


def test_batch_call_forms() -> None:
    class Kw(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.act = nn.GELU()

        def forward(self, a, b=None):
            return self.act(self.lin(a) + (0 if b is None else b))

    m = Kw()
    for batches in ([{"a": torch.randn(3, 4), "b": torch.randn(3, 4)}], [(torch.randn(3, 4),)],
                    [torch.randn(3, 4)]):
        rep = learnact.replace_activations(m, "hermite:degree=4", calibrate=batches, dry_run=True)
        assert rep.entries[0].samples == 12


def _bert():
    import transformers  # optional dependency of the library, part of the [test] extra
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=128,
                                  max_position_embeddings=64)
    m = transformers.BertModel(cfg).eval()
    with torch.no_grad():  # GELU inputs spanning about -17..25, like a trained model's
        for layer in m.encoder.layer:
            layer.intermediate.dense.weight.mul_(22.0)
            layer.intermediate.dense.bias.add_(torch.randn(128) * 2.0 + 3.0)
    return m


def _tokens(seed: int, n: int = 8, t: int = 24) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(0, 300, (n, t), generator=g),
            "attention_mask": torch.ones(n, t, dtype=torch.long)}


def test_bert_surgery_with_calibration() -> None:
    m = _bert()
    seen = []
    hook = m.encoder.layer[0].intermediate.intermediate_act_fn.register_forward_pre_hook(
        lambda mod, a: seen.append((float(a[0].min()), float(a[0].max()))))
    with torch.no_grad():
        ref = m(**_tokens(100)).last_hidden_state
    hook.remove()
    assert seen[0][0] < -10 and seen[0][1] > 12  # the wide range the issue describes
    rep = learnact.replace_activations(m, "hermite:degree=8", fit=True,
                                       calibrate=[_tokens(i) for i in range(4)])
    assert sum(e.old_type == "GELUActivation" for e in rep.entries) == 2
    with torch.no_grad():
        out = m(**_tokens(100)).last_hidden_state  # held-out tokens
    assert _cos(out.mean(1), ref.mean(1)) > 0.999  # sentence embeddings (mean pooling)
    assert _cos(out.reshape(-1, 64), ref.reshape(-1, 64)) > 0.999  # every token
    opt = torch.optim.Adam(learnact.param_groups(m, lr=1e-3), lr=1e-3)
    target = torch.randn_like(out)
    losses = []
    m.train()
    for i in range(20):
        loss = F.mse_loss(m(**_tokens(200 + i % 2)).last_hidden_state, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] <= 0.9 * losses[0]


def test_transformers_act2fn_integration() -> None:
    import transformers
    assert learnact.integrations.register_transformers()
    from transformers.activations import ACT2FN

    assert isinstance(ACT2FN["hermite:degree=4"], learnact.Hermite)
    assert "tropical:degree=3" in ACT2FN and "gelu" in ACT2FN
    assert type(ACT2FN["gelu"]).__module__.startswith("transformers")  # HF names keep meaning
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  hidden_act="hermite:degree=5")
    model = transformers.BertModel(cfg)
    assert isinstance(model.encoder.layer[0].intermediate.intermediate_act_fn, learnact.Hermite)
    assert learnact.integrations.register_transformers()  # idempotent


def _state(model: nn.Module) -> tuple[list[tuple[str, type]], dict[str, torch.Tensor]]:
    return ([(p, type(m)) for p, m in model.named_modules(remove_duplicate=False)],
            {k: v.clone() for k, v in model.state_dict().items()})


def _unchanged(model: nn.Module, before) -> bool:
    mods, sd = before
    now_mods, now_sd = _state(model)
    return now_mods == mods and now_sd.keys() == sd.keys() and all(
        torch.equal(v, now_sd[k]) for k, v in sd.items())


def test_degenerate_calibration_aborts_and_leaves_the_model() -> None:
    """A layer whose inputs are constant (after a zeroed Linear) used to get +-inf
    coefficients and a report saying "applied"; now: a clear error, the model untouched."""
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 8), nn.GELU())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
    before = _state(model)
    with pytest.raises(ValueError, match=r"inputs of 1 are constant"):
        learnact.replace_activations(model, "hermite:degree=6", calibrate=[torch.randn(32, 4)])
    assert _unchanged(model, before)


@pytest.mark.parametrize("calibrate,error,pattern", [
    ([], ValueError, "calibrate is empty"),
    (torch.randn(16, 4), TypeError, r"got a Tensor; .*calibrate=\[x\]"),
    (42, TypeError, "iterable of batches"),
    ([torch.full((16, 4), float("nan"))], ValueError, "every input of 1 was NaN or inf"),
])
def test_calibration_input_is_validated(calibrate, error, pattern) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU())
    before = _state(model)
    with pytest.raises(error, match=pattern):
        learnact.replace_activations(model, "hermite:degree=4", calibrate=calibrate)
    assert _unchanged(model, before)


def test_too_few_calibration_values() -> None:
    model = nn.Sequential(nn.Linear(4, 1), nn.GELU())
    with pytest.raises(ValueError, match="saw 1 finite input value"):
        learnact.replace_activations(model, "hermite:degree=4", calibrate=[torch.randn(1, 4)])


def test_max_error_threshold_aborts_atomically() -> None:
    model = _cnn()
    before = _state(model)
    with pytest.raises(ValueError, match=r"surgery aborted at 1 \(GELU\).*above max_error=1e-09"):
        learnact.replace_activations(model, "hermite:degree=3", max_error=1e-9)
    assert _unchanged(model, before)
    rep = learnact.replace_activations(model, "hermite:degree=8", max_error=0.05)
    assert rep.applied and all(e.fit.max_error <= 0.05 for e in rep.entries)
    with pytest.raises(ValueError, match="max_error must be"):
        learnact.replace_activations(_cnn(), "hermite", max_error=-1)


def test_a_failing_fit_aborts_with_the_module_named(monkeypatch) -> None:
    """A fit that produces non-finite parameters at the second activation: nothing changes."""
    import learnact.surgery as surgery

    model = _cnn()
    before = _state(model)
    real = surgery._fit
    calls = []

    def flaky(new, target, **kw):
        calls.append(1)
        rep = real(new, target, **kw)
        if len(calls) == 2:
            raise ValueError("fit of Hermite to SiLU failed: parameters coeffs are not finite")
        return rep

    monkeypatch.setattr(surgery, "_fit", flaky)
    with pytest.raises(ValueError, match=r"surgery aborted at 3 \(SiLU\).*not finite.*unchanged"):
        learnact.replace_activations(model, "hermite:degree=4")
    assert _unchanged(model, before)


def test_shared_instance_is_replaced_everywhere_and_restored() -> None:
    """One nn.GELU instance used in two places: both places get the same new module (sharing
    kept), the report lists both, restore puts the shared original back at both."""
    act = nn.GELU()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
            self.act1, self.act2 = act, act

        def forward(self, x):
            return self.act2(self.b(self.act1(self.a(x))))

    net = Net()
    x = torch.randn(8, 4)
    with torch.no_grad():
        ref = net(x)
    rep = learnact.replace_activations(net, "hermite:degree=6", calibrate=[torch.randn(64, 4)])
    assert [e.path for e in rep.entries] == ["act1", "act2"]
    assert isinstance(net.act1, learnact.Hermite) and net.act1 is net.act2
    assert rep.entries[0].samples > 0 and rep.entries[0].fit is rep.entries[1].fit
    assert len(list(net.parameters())) == 5  # 4 Linear tensors + one shared coefficient vector
    learnact.restore(net, rep)
    assert net.act1 is act and net.act2 is act
    with torch.no_grad():
        assert torch.equal(net(x), ref)


def test_restore_checks_what_is_installed_now() -> None:
    model = _cnn()
    rep = learnact.replace_activations(model, "hermite:degree=4")
    model[3] = nn.ReLU()  # changed after the surgery
    with pytest.raises(ValueError, match="3 holds ReLU, not the hermite:degree=4.*Nothing was changed"):
        learnact.restore(model, rep)
    assert isinstance(model[1], learnact.Hermite) and isinstance(model[3], nn.ReLU)
    other = _cnn()
    with pytest.raises(ValueError, match="does not describe the model"):
        learnact.restore(other, learnact.replace_activations(_cnn(), "hermite:degree=4"))
    assert isinstance(other[1], nn.GELU)


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_hidden_act_spec_round_trips_through_from_pretrained(arch: str, tmp_path) -> None:
    """A model built from ``hidden_act=<spec>`` reloads with ``from_pretrained`` (which builds
    on the meta device first: every family's init used to fail there) with its learned
    activation parameters."""
    import transformers

    assert learnact.integrations.register_transformers()
    for spec in ("hermite:degree=6", "tropical:degree=3", "fourier:degree=3", "rational",
                 "ditac:cells=5", "ditac:lut=64,cells=5"):
        if arch == "bert":
            cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=32,
                                          hidden_act=spec)
            cls = transformers.BertModel
        else:
            cfg = transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2,
                                          n_positions=16, activation_function=spec)
            cls = transformers.GPT2Model
        torch.manual_seed(0)
        model = cls(cfg).eval()
        acts = [m for m in model.modules() if isinstance(m, learnact.LearnableActivation)]
        assert len(acts) == 2, spec
        with torch.no_grad():  # "fine-tuned": every activation parameter off its init
            for p in learnact.activation_parameters(model):
                p.add_(0.05 * torch.randn_like(p))
        model.save_pretrained(tmp_path / spec.replace(":", "_"))
        back = cls.from_pretrained(tmp_path / spec.replace(":", "_")).eval()
        ids = torch.randint(0, 50, (2, 7))
        with torch.no_grad():
            assert torch.allclose(model(ids).last_hidden_state, back(ids).last_hidden_state,
                                  atol=1e-6), spec
        for p, q in zip(learnact.activation_parameters(model),
                        learnact.activation_parameters(back)):
            assert torch.equal(p, q), spec


def _deep_gelu_mlp(width: int = 16, depth: int = 6) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.GELU()]
        with torch.no_grad():  # pre-activations of a few units: where the nonlinearity matters
            layers[-2].weight.mul_(2.0)
    return nn.Sequential(*layers, nn.Linear(width, 3))


def test_surgery_measures_how_far_the_outputs_moved(caplog) -> None:
    """With calibrate=, the model runs again on the calibration data after the swap: the report
    says by how much its outputs moved (relative rms), against an independent recomputation."""
    model = _deep_gelu_mlp()
    x = torch.randn(64, 16) * 2
    before = model(x).detach()
    rep = learnact.replace_activations(model, "hermite:degree=8", calibrate=[x[:32], x[32:]])
    after = model(x).detach()
    want = float((after - before).norm() / before.norm())
    assert rep.output_change == pytest.approx(want, rel=1e-6)
    assert 0 < rep.output_change < learnact.surgery.OUTPUT_CHANGE_WARN
    assert "model outputs on the calibration data changed by" in rep.table()

    model = _deep_gelu_mlp()  # a coarse family: each fit passes, the outputs move: a warning
    with caplog.at_level("WARNING", logger="learnact.surgery"):
        rep = learnact.replace_activations(model, "tropical:degree=2", calibrate=[x])
    assert rep.output_change > learnact.surgery.OUTPUT_CHANGE_WARN and rep.applied
    assert "outputs on the calibration data changed by" in caplog.text


def test_max_output_change_undoes_the_surgery() -> None:
    model = _deep_gelu_mlp()
    x = torch.randn(64, 16) * 2
    before = model(x).detach()
    acts = [m for m in model if isinstance(m, nn.GELU)]
    with pytest.raises(ValueError, match=r"surgery undone: .*changed by .*above "
                                         r"max_output_change=0.001"):
        learnact.replace_activations(model, "tropical:degree=2", calibrate=[x],
                                     max_output_change=0.001)
    assert [m for m in model if isinstance(m, nn.GELU)] == acts  # the same objects
    assert torch.equal(model(x), before)
    rep = learnact.replace_activations(model, "hermite:degree=8", calibrate=[x],
                                       max_output_change=0.05)
    assert rep.applied and rep.output_change < 0.05
    with pytest.raises(ValueError, match="max_output_change needs calibrate"):
        learnact.replace_activations(_deep_gelu_mlp(), "hermite", max_output_change=0.1)
    with pytest.raises(ValueError, match="max_output_change must be a number > 0"):
        learnact.replace_activations(_deep_gelu_mlp(), "hermite", calibrate=[x],
                                     max_output_change=0)


def test_output_change_of_a_model_run_by_a_callable_and_a_dry_run() -> None:
    """calibrate=callable(model) (sentence-transformers' encode returns numpy): its return
    value is compared; a dry run measures too and changes nothing."""
    model = _deep_gelu_mlp()
    x = torch.randn(32, 16)
    before = model(x).detach()
    rep = learnact.replace_activations(model, "tropical:degree=2", dry_run=True,
                                       calibrate=lambda m: m(x).detach().numpy())
    assert rep.output_change is not None and rep.output_change > 0 and not rep.applied
    assert torch.equal(model(x), before)


def test_full_spec_merges_overrides_without_repeating_a_key() -> None:
    from learnact.surgery import full_spec

    assert full_spec("hermite", {}) == "hermite"
    assert full_spec("hermite", {"tails": "linear"}) == "hermite:tails=linear"
    assert full_spec("hermite:degree=6", {"tails": "linear"}) == "hermite:degree=6,tails=linear"
    merged = full_spec("hermite:tails=relu,degree=6", {"tails": "linear"})
    assert merged == "hermite:tails=linear,degree=6"
    assert learnact.parse_spec(merged) == ("hermite", {"tails": "linear", "degree": "6"})
