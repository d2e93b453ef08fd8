"""Deployment: ONNX (onnxruntime), torch.export without learnact, TorchScript, learnact.freeze,
and the Hugging Face round trip of a model changed by surgery (fresh process, ONNX too)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import learnact
from learnact.core.families import FAMILIES
from learnact.freeze import FrozenActivation
from learnact.modules import SURROGATES as MODULE_SURROGATES

ort = pytest.importorskip("onnxruntime", reason="the [deploy] extra (part of [test])")

# every family and layout its definition declares (learnact.core.families.FAMILIES, THE list;
# an init does not change what is deployed), then every surrogate-derivative activation
SPECS = [s for d in FAMILIES.values() for s in (*d.test_specs, *d.variant_specs) or (d.name,)
         if "init=" not in s]
SURROGATES = set(MODULE_SURROGATES)
SPECS += sorted(SURROGATES)


def _model(spec: str, channels: int | None) -> nn.Module:
    """Linear(4, 4) -> activation, its parameters moved off their init (seeded)."""
    torch.manual_seed(0)
    act = learnact.create(spec, channels=channels) if channels else learnact.create(spec)
    with torch.no_grad():
        for p in act.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return nn.Sequential(nn.Linear(4, 4), act).eval()


def _x(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 4, generator=torch.Generator().manual_seed(seed)) * 2.0


def _close(got: torch.Tensor, want: torch.Tensor, atol: float) -> None:
    err = ((got - want).abs() / (1.0 + want.abs())).max().item()
    assert err <= atol, f"max relative error {err:.2e} > {atol:.0e}"


def _onnx_run(model: nn.Module, path, x_trace: torch.Tensor, x_run: torch.Tensor):
    prog = torch.onnx.export(model, (x_trace,), dynamo=True, verbose=False,
                             dynamic_shapes=({0: torch.export.Dim("batch")},))
    prog.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x_run.numpy()})
    return torch.from_numpy(out)


@pytest.fixture(autouse=True)
def _quiet_exporter():
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("onnxscript").setLevel(logging.ERROR)
    yield


@pytest.mark.parametrize("channels", [None, 4])
@pytest.mark.parametrize("spec", SPECS)
def test_onnx_export_runs_in_onnxruntime_with_a_dynamic_batch(spec, channels, tmp_path) -> None:
    """torch.onnx.export(dynamo=True) of every family (shared and per channel) gives a model
    onnxruntime runs within 1e-5 of PyTorch on another batch size; a surrogate-derivative
    activation says that its forward only is exported."""
    from learnact.ops.surrogate import _warn_forward_only

    model = _model(spec, channels)
    _warn_forward_only.cache_clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = _onnx_run(model, tmp_path / "m.onnx", _x(3, 0), _x(7, 1))
    _close(out, model(_x(7, 1)).detach(), 1e-5)
    said = any("FORWARD function only" in str(w.message) for w in seen)
    assert said == (spec.split(":")[0] in SURROGATES)


@pytest.mark.parametrize("channels", [None, 4])
@pytest.mark.parametrize("spec", SPECS)
def test_torch_export_holds_standard_operators_only(spec, channels) -> None:
    """The exported program of every family holds no learnact op (DiTAC's held
    learnact::flow_apply / cpab_grid / lut_apply) and computes the module's values."""
    model = _model(spec, channels)
    ep = torch.export.export(model, (_x(3, 0),))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not [t for t in targets if "learnact" in t], targets
    _close(ep.module()(_x(3, 2)), model(_x(3, 2)).detach(), 1e-6)


def test_exported_programs_run_without_learnact(tmp_path) -> None:
    """torch.export.save'd programs (DiTAC exact and lut, Hermite with tails, Perlin) load and
    run in a process where importing learnact fails."""
    specs = ["ditac:channels=4", "ditac:lut=64", "hermite:degree=6,tails=linear", "perlin"]
    want = {}
    for i, spec in enumerate(specs):
        model = _model(spec, None)
        ep = torch.export.export(model, (_x(3, 0),))
        torch.export.save(ep, str(tmp_path / f"{i}.pt2"))
        want[i] = model(_x(3, 5)).detach()
    torch.save({"x": _x(3, 5), "want": want}, tmp_path / "ref.pt")
    code = f"""
import sys
sys.modules["learnact"] = None  # any import of learnact raises
import torch
ref = torch.load({str(tmp_path / 'ref.pt')!r})
for i, want in ref["want"].items():
    ep = torch.export.load({str(tmp_path)!r} + f"/{{i}}.pt2")
    err = (ep.module()(ref["x"]) - want).abs().max().item()
    print(i, err)
    assert err <= 1e-6, (i, err)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


@pytest.mark.parametrize("channels", [None, 4])
@pytest.mark.parametrize("spec", SPECS)
def test_freeze_gives_a_scriptable_equal_inference_form(spec, channels) -> None:
    """learnact.freeze: every learnact module becomes a parameter-free form equal to the
    module within its stated bound (0 but rounding, except DiTAC's table: measured at freeze
    time); torch.jit.script and torch.jit.trace compile it and agree; the original model is
    untouched."""
    model = _model(spec, channels)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = learnact.freeze(model)
    act = frozen[1]
    assert not isinstance(model[1], FrozenActivation)  # a copy
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not list(act.parameters()) and not frozen.training
    assert not any(p.requires_grad for p in frozen.parameters())
    if spec.split(":")[0] in SURROGATES:
        assert not any(type(m).__module__.startswith("learnact.modules") for m in frozen.modules())
    else:
        assert isinstance(act, FrozenActivation) and act.source == repr(model[1])
    x = torch.cat([_x(256, 3), torch.linspace(-12, 12, 97)[:, None].expand(97, 4)])
    want = model(x).detach()
    bound = getattr(act, "error_bound", 0.0)
    if "ditac" in spec and "lut" not in spec:
        assert 0 < bound < 1e-4  # the table's measured interpolation error (4096 points)
    else:
        assert bound == 0.0
    err = (frozen(x) - want).abs() - bound
    assert (err / (1.0 + want.abs())).max().item() <= 1e-5  # float32 rounding
    definition = FAMILIES.get(spec.split(":")[0])
    if definition is not None and "torchscript" in definition.missing:
        with pytest.raises(TypeError, match="torch.jit.script cannot compile"):
            torch.jit.script(frozen)
    else:
        scripted = torch.jit.script(frozen)
        _close(scripted(x), frozen(x), 1e-6)
    traced = torch.jit.trace(frozen, (_x(5, 0),))
    _close(traced(_x(9, 4)), frozen(_x(9, 4)), 1e-6)


@pytest.mark.parametrize("spec", ["ditac", "ditac:channels=3,lut=128", "ge_ditac:cells=5",
                                  "ditac:gate=silu,warp=output"])
def test_freeze_exact_ditac_is_exact_and_exports(spec, tmp_path) -> None:
    """freeze(ditac="exact"): the closed form with constant tables, equal to the exact op to
    rounding; ONNX runs it; TorchScript refuses it with a message naming the table form."""
    torch.manual_seed(1)
    act = learnact.create(spec)
    with torch.no_grad():
        act.theta.add_(0.3 * torch.randn_like(act.theta))
    exact = learnact.create(spec.replace(",lut=128", ""))
    exact.load_state_dict(act.state_dict())
    frozen = learnact.freeze(act, ditac="exact")
    x = torch.randn(64, 3) * 3
    _close(frozen(x), exact(x).detach(), 1e-6)
    with pytest.raises(TypeError, match="ditac='table'"):
        torch.jit.script(frozen)
    with pytest.raises(TypeError, match="ditac='table'"):
        torch.jit.trace(frozen, (x,))
    model = nn.Sequential(nn.Linear(3, 3), frozen).eval()
    _close(_onnx_run(model, tmp_path / "e.onnx", torch.randn(2, 3), x), model(x), 1e-5)


def test_freeze_table_points_control_the_bound() -> None:
    """More table points, a smaller stated (measured) bound; the bound holds on a dense grid."""
    torch.manual_seed(2)
    act = learnact.create("ditac:cells=8")
    with torch.no_grad():
        act.theta.add_(0.5 * torch.randn_like(act.theta))
    bounds = []
    x = torch.linspace(-4, 4, 20001, dtype=torch.float64)
    for points in (64, 512):
        frozen = learnact.freeze(act.double(), points=points)
        err = (frozen(x) - act(x).detach()).abs().max().item()
        assert err <= frozen.error_bound * 1.05 + 1e-12
        bounds.append(frozen.error_bound)
    assert bounds[1] < bounds[0] / 10  # linear interpolation: O(h^2)


def test_training_modules_refuse_torch_jit_script_naming_freeze() -> None:
    for spec in ["hermite", "ditac", "perlin", "staircase", "noisy"]:
        with pytest.raises(TypeError, match=r"learnact\.freeze"):
            torch.jit.script(learnact.create(spec))


def test_freeze_bad_input() -> None:
    model = _model("ditac", None)
    with pytest.raises(ValueError, match="ditac must be 'table' or 'exact'"):
        learnact.freeze(model, ditac="lut")
    with pytest.raises(ValueError, match=r"points must be an integer in \[2, 4194304\]"):
        learnact.freeze(model, points=1)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        learnact.freeze("hermite")
    inplace = learnact.freeze(model, inplace=True)
    assert inplace is model and isinstance(model[1], FrozenActivation)
    plain = nn.Sequential(nn.Linear(2, 2), nn.GELU())
    assert isinstance(learnact.freeze(plain)[1], nn.GELU)  # classical: untouched


# -- Hugging Face: surgery -> fine-tune -> save_pretrained -> from_pretrained (fresh process) --
def _hf_model(arch: str):
    import transformers

    torch.manual_seed(0)
    if arch == "bert":
        cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64,
                                      max_position_embeddings=32)
        return transformers.BertModel(cfg)
    cfg = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=32)
    return transformers.GPT2Model(cfg)


@pytest.mark.parametrize("arch,spec", [("bert", "hermite:degree=6"),
                                       ("gpt2", "ditac:lut=256"),
                                       ("bert", "tropical_rational")])
def test_surgery_survives_save_and_from_pretrained_in_a_fresh_process(arch, spec,
                                                                      tmp_path) -> None:
    """replace_activations records itself in the config; after 5 fine-tuning steps,
    save_pretrained + (register_transformers + from_pretrained in a new process) gives the same
    outputs to 1e-6 and the same activation parameters; a process without learnact set up
    fails loudly (KeyError on the marked activation name) instead of loading GELU; the
    reloaded model exports to ONNX and onnxruntime agrees to 1e-5."""
    model = _hf_model(arch)
    learnact.replace_activations(model, spec)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    ids = torch.randint(0, 100, (4, 12), generator=torch.Generator().manual_seed(0))
    start = {k: v.clone() for k, v in model.state_dict().items() if "act" in k}
    for _ in range(5):
        loss = model(input_ids=ids).last_hidden_state.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    moved = [k for k, v in model.state_dict().items() if k in start and not torch.equal(
        v, start[k])]
    assert moved  # the activations' own parameters were trained
    model.eval()
    want = model(input_ids=ids).last_hidden_state.detach()
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["learnact_activations"] and all(
        v.startswith(spec.split(":")[0]) for v in config["learnact_activations"].values())
    torch.save({"ids": ids, "want": want, "state": model.state_dict()}, tmp_path / "ref.pt")
    cls = "BertModel" if arch == "bert" else "GPT2Model"
    code = f"""
import torch, transformers, learnact
learnact.integrations.register_transformers()
m = transformers.{cls}.from_pretrained({str(tmp_path / 'm')!r}).eval()
ref = torch.load({str(tmp_path / 'ref.pt')!r})
state = m.state_dict()
for k, v in ref["state"].items():
    assert torch.equal(state[k], v), k
err = (m(input_ids=ref["ids"]).last_hidden_state - ref["want"]).abs().max().item()
assert err <= 1e-6, err
import onnxruntime as ort
class Wrap(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m
    def forward(self, ids):
        return self.m(input_ids=ids).last_hidden_state
w = Wrap(m).eval()
prog = torch.onnx.export(w, (ref["ids"],), dynamo=True, verbose=False)
prog.save({str(tmp_path / 'm.onnx')!r})
s = ort.InferenceSession({str(tmp_path / 'm.onnx')!r}, providers=["CPUExecutionProvider"])
(out,) = s.run(None, {{s.get_inputs()[0].name: ref["ids"].numpy()}})
err = (torch.from_numpy(out) - ref["want"]).abs().max().item()
assert err <= 1e-5, ("onnx", err)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
    vanilla = f"""
import transformers
try:
    transformers.{cls}.from_pretrained({str(tmp_path / 'm')!r})
except KeyError as e:
    print("KeyError", e)
"""
    done = subprocess.run([sys.executable, "-c", vanilla], capture_output=True, text=True,
                          timeout=300)
    # transformers' own KeyError, with the key saying what to call
    assert re.search(r"KeyError 'learnact:gelu(_new)? \(load with "
                     r"learnact\.integrations\.register_transformers\(\) first\)'",
                     done.stdout), (done.stdout, done.stderr[-2000:])


def test_restore_undoes_the_config_record() -> None:
    model = _hf_model("bert")
    report = learnact.replace_activations(model, "hermite:degree=4", fit=False)
    assert model.config.hidden_act == ("learnact:gelu (load with "
                                       "learnact.integrations.register_transformers() first)")
    assert model.config.learnact_activations
    learnact.restore(model, report)
    assert model.config.hidden_act == "gelu"
    assert not hasattr(model.config, "learnact_activations")


def test_recorded_paths_follow_the_base_model_prefix(tmp_path) -> None:
    """Saved from BertModel, loaded as BertForSequenceClassification (paths gain 'bert.'),
    and the reverse."""
    import transformers

    assert learnact.integrations.register_transformers()
    model = _hf_model("bert")
    learnact.replace_activations(model, "fourier:degree=4", fit=False)
    model.save_pretrained(tmp_path / "base")
    head = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "base")
    act = head.bert.encoder.layer[1].intermediate.intermediate_act_fn
    assert isinstance(act, learnact.Fourier)
    torch.testing.assert_close(act.amplitude, model.encoder.layer[1].intermediate
                               .intermediate_act_fn.amplitude)
    learnact.replace_activations(head, "hermite:degree=4", fit=False,
                                 targets=["*.intermediate_act_fn"])
    head.save_pretrained(tmp_path / "head")
    back = transformers.BertModel.from_pretrained(tmp_path / "head")
    assert isinstance(back.encoder.layer[0].intermediate.intermediate_act_fn, learnact.Hermite)


def test_freeze_replaces_a_shared_instance_at_every_place() -> None:
    """One activation instance used at two places gets one frozen form, installed at both (it
    was frozen at the first place only: named_modules lists a shared instance once)."""
    act = learnact.create("hermite:degree=4")
    model = nn.Sequential(nn.Linear(3, 3), act, nn.Linear(3, 3), act)
    frozen = learnact.freeze(model)
    assert isinstance(frozen[1], FrozenActivation) and frozen[3] is frozen[1]
    x = torch.randn(5, 3)
    torch.testing.assert_close(frozen(x), model(x).detach())


def test_marked_names_old_and_new_mean_the_activation_they_name() -> None:
    """Configs saved before the hint (``learnact:gelu``) and after it load alike."""
    from learnact.integrations import _unmarked
    from learnact.surgery import HF_HINT, HF_MARK

    assert _unmarked(HF_MARK + "gelu" + HF_HINT) == "gelu"
    assert _unmarked("learnact:gelu") == "gelu"
    assert _unmarked("gelu_new") == "gelu_new" and _unmarked(None) is None
