"""Run by `make test-wheel` in a fresh venv holding the built wheel and its core dependency
(numpy) only: the package imports, its torch-free core works, and the PyTorch API says which
extra to install."""

import importlib.util

import learnact
from learnact.core import hermite

assert importlib.util.find_spec("torch") is None, "this venv must not have torch"
assert learnact.__file__ and "site-packages" in learnact.__file__, learnact.__file__
m = hermite.moments(hermite.unit_coefficients(8))
assert abs(m.second - 1.0) < 1e-12, m  # the unit init: E[f^2] = 1 exactly
try:
    learnact.create("hermite")
except ImportError as exc:
    assert "learnact[torch]" in str(exc), exc
else:
    raise AssertionError("learnact.create without torch must raise ImportError")
from learnact.core import cpab  # noqa: E402

if importlib.util.find_spec("scipy") is None:  # DiTAC's basis says what to install
    try:
        cpab.basis(4)
    except ImportError as exc:
        assert "scipy" in str(exc), exc
    else:
        raise AssertionError("cpab.basis without scipy must raise ImportError")
# the native kernels' sources ship in the wheel (built on first use)
from importlib.resources import files  # noqa: E402

for name in ("native/cpab.c", "native/families.cc", "native/abi.h", "native/hermite.h",
             "native/vecmath.h", "xla_native/families.cc", "xla_native/cpab.cc",
             "xla_native/ffi_common.h"):
    assert files("learnact").joinpath(name).is_file(), f"{name} is not in the wheel"
print("core-only wheel ok:", learnact.__version__, learnact.__file__)
