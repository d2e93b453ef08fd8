// Every family with a fused CPU kernel, for the bindings (native/families.cc for PyTorch,
// xla_native/families.cc for JAX): LA_FAMILIES(X) calls X(name, Struct) once per family.
// A new family's kernel: native/<family>.h, one line here, its ``table`` in its definition
// (learnact/core/families.py), and the ABI number (abi.h) bumped.
#pragma once

#include "fourier.h"
#include "hermite.h"
#include "rational.h"
#include "schedule.h"
#include "selu_variation.h"
#include "tropical.h"

#include "abi.h"

#define LA_FAMILIES(X)                 \
  X(hermite, la::Hermite)              \
  X(tropical, la::Tropical)            \
  X(tropical_rational, la::TropicalRational) \
  X(rational, la::Rational)            \
  X(fourier, la::Fourier)              \
  X(selu_variation, la::SELUVariation)
