// learnact's vectorisable sin, cos and expm1 over a block of lanes (the Fourier and SELU
// variation kernels). Part of the family kernels' build (native/families.h includes it).
// ------------------------------------------------------------------------------------------
// sin, cos and expm1 over a block (XLA's scalar libm calls are what keep its Fourier and SELU
// variation backward slow): t = j pi/2 + r with |r| <= pi/4 by a three-part Cody-Waite split
// of pi/2 (each product j * part exact while |j| < 2^11 in float, 2^21 in double), then Taylor
// series in r (to r^12 in float, r^18 in double: below half an ulp on |r| <= pi/4), quadrant
// by selects. Larger |t| (rare) are redone with std::sin/std::cos.
// ------------------------------------------------------------------------------------------
#pragma once

#include "common.h"

namespace la {

template <typename T>
struct Trig;

template <>
struct Trig<float> {
  static constexpr float P1 = 1.57080078125f, P2 = -4.453584551811218e-06f,
                         P3 = -8.705515752716053e-10f, LIMIT = 6000.0f;
  static LA_INLINE float sin_r(float r, float r2) {
    return r + r * r2 * (-1.0f / 6 + r2 * (1.0f / 120 + r2 * (-1.0f / 5040 + r2 * (
        1.0f / 362880 + r2 * (-1.0f / 39916800)))));
  }
  static LA_INLINE float cos_r(float r2) {
    return 1.0f + r2 * (-0.5f + r2 * (1.0f / 24 + r2 * (-1.0f / 720 + r2 * (
        1.0f / 40320 + r2 * (-1.0f / 3628800 + r2 * (1.0f / 479001600))))));
  }
};

template <>
struct Trig<double> {
  static constexpr double P1 = 1.5707963267341256, P2 = 6.077100506303966e-11,
                          P3 = 2.0222662487959506e-21, LIMIT = 3.0e6;
  static LA_INLINE double sin_r(double r, double r2) {
    double p = -1.0 / 355687428096000.0;                  // -1/17!
    p = 1.0 / 1307674368000.0 + r2 * p;                   // 1/15!
    p = -1.0 / 6227020800.0 + r2 * p;                     // -1/13!
    p = 1.0 / 39916800.0 + r2 * p;
    p = -1.0 / 362880.0 + r2 * p;
    p = 1.0 / 5040.0 + r2 * p;
    p = -1.0 / 120.0 + r2 * p;
    p = 1.0 / 6.0 + r2 * p;
    return r - r * r2 * p;
  }
  static LA_INLINE double cos_r(double r2) {
    double p = 1.0 / 6402373705728000.0;                  // 1/18!
    p = -1.0 / 20922789888000.0 + r2 * p;                 // -1/16!
    p = 1.0 / 87178291200.0 + r2 * p;                     // 1/14!
    p = -1.0 / 479001600.0 + r2 * p;
    p = 1.0 / 3628800.0 + r2 * p;
    p = -1.0 / 40320.0 + r2 * p;
    p = 1.0 / 720.0 + r2 * p;
    p = -1.0 / 24.0 + r2 * p;
    p = 0.5 + r2 * p;
    return 1.0 - r2 * p;
  }
};

// w x clipped to +-2^127 (PHASE_BOUND of learnact/core/_xp.py: exact in float and double): an
// overflowing phase made sin/cos NaN at finite x (Fourier's w x, SELU variation's omega x);
// NaN stays NaN (std::max/std::min return their first argument when unordered)
template <typename T>
static LA_INLINE T clipped_phase(T x, T w) {
  constexpr T B = T(1.7014118346046923e38);
  return std::min(std::max(x * w, -B), B);
}

// s[j] = sin(t[j]), c[j] = cos(t[j])
template <typename T>
static LA_INLINE void sincos_block(const T* __restrict__ t, int n, T* __restrict__ s,
                                   T* __restrict__ c) {
  using R = Trig<T>;
  int large = 0;
  for (int j = 0; j < n; ++j) {
    const T v = t[j];
    const T q = std::rint(v * T(0.63661977236758134308));
    const T r = ((v - q * R::P1) - q * R::P2) - q * R::P3;
    const T r2 = r * r;
    const T sr = R::sin_r(r, r2), cr = R::cos_r(r2);
    const T m = q - T(4) * std::floor(q * T(0.25));  // quadrant 0..3
    const bool odd = m == T(1) || m == T(3);
    const T sv = odd ? cr : sr, cv = odd ? sr : cr;
    s[j] = m >= T(2) ? -sv : sv;
    c[j] = (m == T(1) || m == T(2)) ? -cv : cv;
    large += std::abs(v) <= R::LIMIT ? 0 : 1;  // NaN too: std:: functions give NaN
  }
  if (large)
    for (int j = 0; j < n; ++j)
      if (!(std::abs(t[j]) <= R::LIMIT)) {
        s[j] = std::sin(t[j]);
        c[j] = std::cos(t[j]);
      }
}

// e^z - 1 for z = t[j]: z = k ln2 + r, |r| <= ln2/2, e^z - 1 = 2^k (e^r - 1) + (2^k - 1), e^r - 1
// by its Taylor series (to r^8 in float, r^14 in double), 2^k written into the exponent bits
// (z clamped so that k stays a normal exponent; beyond: -1 below, +inf above, NaN kept).
template <typename T>
struct Exp;

template <>
struct Exp<float> {
  static constexpr float LO = -88.0f, HI = 88.0f, OVERFLOW = 88.7228390f,
                         LN2_HI = 0.693145751953125f, LN2_LO = 1.428606765330187045e-06f;
  static LA_INLINE float em1_r(float r) {  // (e^r - 1 - r) / r^2
    float p = 1.0f / 40320;  // Horner from 1/8! down to 1/2!, written out (a loop over the
    p = 1.0f / 5040 + r * p;  // constants is left scalar: 2.5x slower)
    p = 1.0f / 720 + r * p;
    p = 1.0f / 120 + r * p;
    p = 1.0f / 24 + r * p;
    p = 1.0f / 6 + r * p;
    return 0.5f + r * p;
  }
  static LA_INLINE float pow2(float k) {
    int32_t bits = ((int32_t)k + 127) << 23;
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
};

template <>
struct Exp<double> {
  static constexpr double LO = -708.0, HI = 709.0, OVERFLOW = 709.782712893384,
                          LN2_HI = 0.6931471806019545, LN2_LO = -4.2009150726810846e-11;
  static LA_INLINE double em1_r(double r) {
    double p = 1.0 / 87178291200.0;  // 1/14! down to 1/2!
    p = 1.0 / 6227020800.0 + r * p;
    p = 1.0 / 479001600.0 + r * p;
    p = 1.0 / 39916800.0 + r * p;
    p = 1.0 / 3628800.0 + r * p;
    p = 1.0 / 362880.0 + r * p;
    p = 1.0 / 40320.0 + r * p;
    p = 1.0 / 5040.0 + r * p;
    p = 1.0 / 720.0 + r * p;
    p = 1.0 / 120.0 + r * p;
    p = 1.0 / 24.0 + r * p;
    p = 1.0 / 6.0 + r * p;
    return 0.5 + r * p;
  }
  static LA_INLINE double pow2(double k) {
    // k + 1.5 2^52 holds k in its low bits; shifted into the exponent field (no int64
    // conversion, which AVX2 lacks)
    const double m = k + 6755399441055744.0;
    int64_t bits;
    std::memcpy(&bits, &m, sizeof bits);
    bits = (bits + 1023) << 52;
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
};

template <typename T>
static LA_INLINE void expm1_block(const T* __restrict__ t, int n, T* __restrict__ out) {
  using E = Exp<T>;
  for (int j = 0; j < n; ++j) {
    const T z = std::min(std::max(t[j], E::LO), E::HI);
    const T k = std::rint(z * T(1.44269504088896340736));
    const T r = (z - k * E::LN2_HI) - k * E::LN2_LO;
    const T em1 = r + r * r * E::em1_r(r);
    const T scale = E::pow2(k);
    T v = scale * em1 + (scale - T(1));
    v = t[j] > E::OVERFLOW ? T(INFINITY) : v;
    out[j] = t[j] != t[j] ? t[j] : v;  // NaN stays NaN
  }
}


}  // namespace la
