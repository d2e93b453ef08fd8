"""Hostile input, generated: spec strings, tensor shapes and dtypes, the command line.

The property everywhere: a clear error (ValueError/TypeError naming the problem, or argparse's
exit 2 with one message) or a correct result; never a traceback from inside (IndexError,
RuntimeError, OverflowError, ZeroDivisionError, a crash) and never a silent NaN for finite
input."""

from __future__ import annotations

import contextlib
import inspect
import io
import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import learnact
from learnact.cli import build_parser, main
from learnact.registry import lookup

from .conftest import LEARNABLE

NAMES = sorted(learnact.available())
# CI explores the same examples every run (a red build always means a change); set
# LEARNACT_FUZZ=explore to draw fresh ones, LEARNACT_FUZZ_SCALE=10 for ten times as many
DERANDOMIZE = os.environ.get("LEARNACT_FUZZ", "") != "explore"
SCALE = int(os.environ.get("LEARNACT_FUZZ_SCALE", "1"))
CLEAR = (ValueError, TypeError)

# values a user might type after key= (numbers at and past every edge, words, nothing)
VALUES = st.one_of(
    st.integers(-3, 70).map(str),
    st.sampled_from(["0", "-1", "1e308", "-1e308", "nan", "inf", "-inf", "1e-320", "2048",
                     "1000000000", "99999999999999999999", "0.5", "3", "true", "false", "none",
                     "", "linear", "polynomial", "gelu", "unit", "paper", "naive", "x", "1,2",
                     "=", ":", "input", "output", "leaky_relu", "identity", "silu"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def specs(draw) -> str:
    name = draw(st.one_of(st.sampled_from(NAMES), st.sampled_from(["hermitte", "", "HERMITE",
                                                                    "ditac ", "tropical:"]),
                          st.text(min_size=0, max_size=8)))
    keys = []
    if name in NAMES:
        keys = [p for p in inspect.signature(lookup(name).signature_of).parameters
                if p not in ("self", "args", "kwargs")]
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(keys or ["k"]), st.text(max_size=5)),
                                    VALUES), max_size=3))
    if not pairs:
        return name
    return name + ":" + ",".join(f"{k}={v}" for k, v in pairs)


def _params(act: torch.nn.Module) -> int:
    return sum(p.numel() for p in act.parameters()) + sum(b.numel() for b in act.buffers())


@settings(max_examples=400 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=DERANDOMIZE)
@given(specs())
def test_any_spec_string_builds_or_says_why(spec: str) -> None:
    try:
        act = learnact.create(spec)
    except CLEAR as exc:
        assert str(exc), spec  # a message, not an empty error
        return
    assert isinstance(act, torch.nn.Module)
    assert _params(act) < 50_000_000, spec  # size-like parameters are capped
    x = torch.linspace(-4, 4, 64).reshape(2, 32)
    try:
        y = act(x)
    except CLEAR as exc:  # e.g. a per-channel module given no channel axis of its size
        assert str(exc)
        return
    assert y.shape == x.shape and y.dtype == x.dtype
    assert bool(torch.isfinite(y).all()), f"{spec}: non-finite output for finite input"


SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=4)
DTYPES = st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.float16,
                          torch.int64, torch.int32, torch.bool, torch.complex64, torch.uint8])


@settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=DERANDOMIZE)
@given(st.sampled_from(LEARNABLE), st.booleans(), SHAPES, DTYPES, st.integers(-4, 3))
def test_any_shape_and_dtype_gives_a_result_or_a_clear_error(fam, per_channel, shape, dtype,
                                                             channel_dim) -> None:
    name, kw = fam
    try:
        act = learnact.create(name, channels=3 if per_channel else None,
                              channel_dim=channel_dim, **kw)
    except CLEAR as exc:  # channel_dim out of range for the module is refused at build time
        assert "channel_dim" in str(exc)
        return
    x = (torch.randn(shape) * 2).to(dtype) if dtype.is_floating_point or dtype.is_complex \
        else torch.randint(0, 3, shape).to(dtype)
    try:
        y = act(x)
    except CLEAR as exc:
        msg = str(exc)
        assert any(w in msg for w in ("dtype", "channel", "dimension", "dim", "float")), msg
        return
    assert dtype.is_floating_point, f"{dtype} accepted silently"
    assert y.shape == x.shape and y.dtype == x.dtype
    assert bool(torch.isfinite(y.float()).all()) or dtype == torch.float16


# -- the command line ---------------------------------------------------------------------------
NUMBERS = st.sampled_from(["0", "-1", "1", "2", "1e9", "nan", "inf", "-0.5", "abc", "", "3.5",
                           "0,1", "a,b", "1,,2", "65536", "99999999999"])
FLAGS = {
    ("bench", "autoencoder"): ["--epochs", "--seeds", "--channels", "--latent", "--lr",
                               "--batch-size", "--train-limit", "--test-limit", "--widths",
                               "--lrs", "--target-loss", "--device", "--threads",
                               "--record-every"],
    ("bench", "toy2d"): ["--seeds", "--gmm-steps", "--reg-steps", "--fourier-features",
                         "--threads"],
    ("bench", "depth"): ["--width", "--depth", "--batch", "--seed", "--threads"],
    ("bench", "ops"): ["--runs", "--threads", "--device"],
    ("train", "charlm"): ["--seeds", "--vocab-size", "--max-chars", "--steps", "--lr",
                          "--eval-every", "--batch-size", "--block-size", "--n-layer",
                          "--n-head", "--n-embd", "--grad-accum", "--stop-after", "--device",
                          "--threads"],
    ("train", "convnext"): ["--seeds", "--epochs", "--batch-size", "--lr", "--stop-after",
                            "--device", "--threads", "--train-limit"],
    ("plot", "atlas"): ["--lo", "--hi", "--res", "--max-units"],
    ("atlas", "serve"): ["--port"],
    ("fit",): ["--sigma", "--derivative-weight"],
}


@settings(max_examples=400 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=DERANDOMIZE)
@given(st.sampled_from(sorted(FLAGS)), st.data())
def test_cli_arguments_parse_or_exit_2_with_one_message(cmd, data) -> None:
    """Every numeric/device argument is an argparse type with a range: bad values exit 2 with
    argparse's one-line message naming the argument, before any work."""
    flags = data.draw(st.lists(st.sampled_from(FLAGS[cmd]), min_size=1, max_size=3,
                               unique=True))
    argv = list(cmd) + (["hermite"] if cmd == ("fit",) else []) + (
        ["/tmp"] if cmd == ("plot", "atlas") else [])
    for f in flags:
        argv += [f, data.draw(NUMBERS)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2
            msg = err.getvalue()
            assert "error: argument" in msg and "Traceback" not in msg, msg
            return
    for f in flags:  # accepted values are in range
        v = getattr(args, f.lstrip("-").replace("-", "_"))
        for item in v if isinstance(v, list) else [v]:
            if isinstance(item, (int, float)) and f not in ("--lo", "--hi"):
                assert math.isfinite(item) and item >= 0, (f, item)


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=DERANDOMIZE)
@given(specs(), st.sampled_from(["gelu", "relu", "tanh", "nope", "hermite"]),
       st.sampled_from(["normal", "-1,1", "1,-1", "0,0", "nan,1", "x", "-3,3"]))
def test_cli_fit_runs_or_exits_2(spec: str, target: str, domain: str) -> None:
    """`learnact fit` end to end on generated specs, targets and domains: 0 or 2, one line."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["fit", spec, "--target", target, "--domain", domain])
        except SystemExit as exc:  # argparse (e.g. a spec string that looks like a flag)
            code = exc.code
    assert code in (0, 2), (spec, target, domain, err.getvalue())
    if code == 2:
        assert "error" in err.getvalue() and "Traceback" not in err.getvalue()


@pytest.mark.parametrize("argv,pattern", [
    (["train", "charlm", "--block-size", "0"], "--block-size: must be an integer >= 1"),
    (["train", "charlm", "--device", "banana"], "--device: expected cpu, cuda"),
    (["bench", "autoencoder", "--seeds", "a,b"], "--seeds: expected comma-separated seeds"),
    (["bench", "autoencoder", "--batch-size", "0"], "--batch-size: must be an integer >= 1"),
    (["fit", "hermite", "--save", "/nonexistent/x.pt"], "--save: .*does not exist"),
    (["fit", "hermite", "--sigma", "-1"], "--sigma: must be a finite number > 0"),
    (["atlas", "serve", "--port", "-1"], r"--port: must be an integer in \[0, 65535\]"),
])
def test_cli_regressions_exit_2_before_work(argv, pattern, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    import re

    assert re.search(pattern, capsys.readouterr().err)


def test_atlas_busy_port_and_bad_host_are_one_line(capsys) -> None:
    from learnact.viz.atlas_server import make_server

    busy = make_server(None, 0)
    try:
        port = busy.server_address[1]
        assert main(["atlas", "serve", "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert f"--port {port}: cannot serve" in err and err.count("\n") == 1
    finally:
        busy.server_close()
    assert main(["atlas", "serve", "--host", "bogus.invalid", "--port", "0"]) == 2
    assert "--host bogus.invalid: cannot serve" in capsys.readouterr().err


@pytest.mark.parametrize("spec,pattern", [
    ("ditac:lut=1000000000", r"lut must be an integer in \[2, 1048576\]"),
    ("hermite:tails=linear,bound=1e308", r"bound must be a finite number in \(0, 10000\]"),
    ("prelu:channels=0", r"channels must be an integer in \[1, 1048576\]"),
    ("hermite:channels=100000000", "channels must be an integer in"),
    ("gelu:approximate=0", "approximate must be one of"),
    ("celu:alpha=0", "alpha must be a finite number other than 0"),
    ("softplus:beta=1e308", "beta must be a finite number"),
    ("leaky_relu:negative_slope=nan", "negative_slope must be a finite number"),
    ("relu:inplace=2", "inplace.*expected true/false"),
    ("rrelu:lower=0.5,upper=0.1", "need lower < upper"),
    ("ditac:a=-1e308", r"a must be a finite number in \[-1e\+06, 1e\+06\]"),
])
def test_size_and_range_caps(spec: str, pattern: str) -> None:
    """Parameters that allocate memory or overflow float32 are refused at construction."""
    with pytest.raises(CLEAR, match=pattern):
        learnact.create(spec)
