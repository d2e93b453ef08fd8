// learnact's sin, cos and expm1 on vectors V<T> (the Fourier and SELU variation kernels). Part of the family kernels' build (native/families.h includes it).
// ------------------------------------------------------------------------------------------
// sin, cos and expm1 on vectors (XLA's scalar libm calls are what keep its Fourier and SELU
// variation backward slow). Float: v = h pi + r with |r| <= pi/2 by a three-part Cody-Waite
// split of pi (each product h * part exact while |h| < 2^11), minimax polynomials in r (sin to
// r^9, cos to r^10), sign (-1)^h: sin and cos need no quadrant selects (Fourier d4, kernels
// alone, one thread: 3.51 -> 2.8 ns/element fwd+bwd against quarter turns |r| <= pi/4 with
// selects). Double: v = j pi/2 + r with |r| <= pi/4 by a three-part split of pi/2 (exact
// while |j| < 2^21), Taylor to r^18 (below half an ulp), quadrant by selects. Larger |v|
// (rare) are redone with std::sin/std::cos.
// ------------------------------------------------------------------------------------------
#pragma once

#include "common.h"

namespace la {

// round to nearest (even) for |v| < 2^22 (float) / 2^51 (double): larger lanes are not used
// (sincos redoes them, expm1 clamps first)
template <typename T>
LA_INLINE V<T> vrint(V<T> v) {
  constexpr T M = sizeof(T) == 4 ? T(12582912.0) : T(6755399441055744.0);  // 1.5 2^mantissa
  return (v + M) - M;
}

template <typename T>
struct Trig;

template <>
struct Trig<float> {
  // pi in three parts (P1 with 12 significant bits: h * P1 exact for |h| < 2^11, which
  // |v| <= LIMIT keeps), for r = v - h pi
  static constexpr float P1 = 3.1416015625f, P2 = -8.907169103622437e-06f,
                         P3 = -1.7411031505432106e-09f, LIMIT = 6000.0f;
  static constexpr float INV_PI = 0.318309886183790671538f, M = 12582912.0f;  // 1.5 2^23
  // sin and cos on |r| <= pi/2, minimax (fitted in float64 by Lawson's iteration, coefficients
  // rounded to float): sin to r^9 (4.6e-9; 1.3e-7 evaluated in float), cos to r^10 (2.4e-10;
  // 2.3e-7 in float)
  template <class X>
  static LA_INLINE X sin_half_pi(X r, X r2) {
    return r + r * r2 * (-0.16666656732559204f + r2 * (0.008333017118275166f + r2 * (
        -0.00019806614727713168f + r2 * 2.600054585855105e-06f)));
  }
  template <class X>
  static LA_INLINE X cos_half_pi(X r2) {
    return 1.0f + r2 * (-0.5f + r2 * (0.04166664183139801f + r2 * (-0.00138884037733078f + r2 * (
        2.4761886379565112e-05f + r2 * -2.6077111670019804e-07f))));
  }
  // v = h pi + r, |r| <= pi/2 (h = rint(v/pi)), and (-1)^h as a sign bit: the rint's 1.5 2^23
  // sum holds h's low bit in its own low bit (no conversion)
  static LA_INLINE V<float> reduce(V<float> v, VI<float>& sign) {
    const V<float> big = v * INV_PI + M, h = big - M;
    std::memcpy(&sign, &big, sizeof sign);
    sign <<= 31;
    return ((v - h * P1) - h * P2) - h * P3;
  }
};

template <>
struct Trig<double> {
  static constexpr double P1 = 1.5707963267341256, P2 = 6.077100506303966e-11,
                          P3 = 2.0222662487959506e-21, LIMIT = 3.0e6;
  template <class X>
  static LA_INLINE X sin_r(X r, X r2) {
    X p = X{} - 1.0 / 355687428096000.0;                 // -1/17!
    p = 1.0 / 1307674368000.0 + r2 * p;                   // 1/15!
    p = -1.0 / 6227020800.0 + r2 * p;                     // -1/13!
    p = 1.0 / 39916800.0 + r2 * p;
    p = -1.0 / 362880.0 + r2 * p;
    p = 1.0 / 5040.0 + r2 * p;
    p = -1.0 / 120.0 + r2 * p;
    p = 1.0 / 6.0 + r2 * p;
    return r - r * r2 * p;
  }
  template <class X>
  static LA_INLINE X cos_r(X r2) {
    X p = X{} + 1.0 / 6402373705728000.0;                 // 1/18!
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

// v with the sign bits of `bits` XORed in (bits: only sign bits set)
template <typename T>
LA_INLINE V<T> vflip(V<T> v, VI<T> bits) {
  VI<T> b;
  std::memcpy(&b, &v, sizeof v);
  b ^= bits;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// w x clipped to +-2^127 (PHASE_BOUND of learnact/core/_xp.py: exact in float and double): an
// overflowing phase made sin/cos NaN at finite x (Fourier's w x, SELU variation's omega x);
// NaN stays NaN (std::max/std::min return their first argument when unordered). CHECK =
// false: the caller's range test bounds |w x| below LIMIT, where the clip changes nothing
template <typename T, bool CHECK = true>
static LA_INLINE V<T> clipped_phase(V<T> x, V<T> w) {
  if (!CHECK) return x * w;
  const V<T> b = vset(T(1.7014118346046923e38));
  return vmin<T>(vmax<T>(x * w, -b), b);
}

// the lanes of v beyond LIMIT (the polynomial's range) redone with std::sin / std::cos: out of
// line, vectors in and out by value, so the common path keeps its vectors in registers
template <typename T>
__attribute__((noinline, cold)) V<T> sin_beyond(V<T> v, V<T> s) {
  for (int i = 0; i < L<T>; ++i)
    if (!(std::abs(v[i]) <= Trig<T>::LIMIT)) s[i] = std::sin(v[i]);
  return s;
}
template <typename T>
__attribute__((noinline, cold)) V<T> cos_beyond(V<T> v, V<T> c) {
  for (int i = 0; i < L<T>; ++i)
    if (!(std::abs(v[i]) <= Trig<T>::LIMIT)) c[i] = std::cos(v[i]);
  return c;
}

// sin and cos of m pi/2 + r from sin(r), cos(r) and the low two bits of the integer m (its
// quadrant): sin and cos swap where m is odd; sin is negative where m mod 4 >= 2 (bit 1 of m),
// cos where m mod 4 is 1 or 2 (bit 1 of m + 1): those bits moved to the sign bit and XORed in
// (a negation where set: the same bits as selects of -v, in fewer instructions)
template <typename T>
static LA_INLINE void quadrant(VI<T> qi, V<T> sr, V<T> cr, V<T>& s, V<T>& c) {
  const VI<T> odd = (qi & 1) != 0;
  const V<T> sv = vsel<T>(odd, cr, sr), cv = vsel<T>(odd, sr, cr);
  constexpr int SIGN = 8 * sizeof(T) - 2;  // bit 1 to the sign bit
  s = vflip<T>(sv, (qi & 2) << SIGN);
  c = vflip<T>(cv, ((qi + 1) & 2) << SIGN);
}

// s = sin(v), c = cos(v); CHECK = false: the caller knows |v| <= LIMIT in every lane
template <typename T, bool CHECK = true>
static LA_INLINE void vsincos(V<T> v, V<T>& s, V<T>& c) {
  using R = Trig<T>;
  if constexpr (sizeof(T) == 4) {  // v = h pi + r: both (-1)^h times sin(r), cos(r)
    VI<T> sign;
    const V<T> r = R::reduce(v, sign), r2 = r * r;
    s = vflip<T>(R::sin_half_pi(r, r2), sign);
    c = vflip<T>(R::cos_half_pi(r2), sign);
  } else {
    const V<T> q = vrint<T>(v * T(0.63661977236758134308));
    const V<T> r = ((v - q * R::P1) - q * R::P2) - q * R::P3;
    const V<T> r2 = r * r;
    quadrant<T>(__builtin_convertvector(q, VI<T>), R::sin_r(r, r2), R::cos_r(r2), s, c);
  }
  // |v| > LIMIT (rare); NaN and infinities come out NaN either way, as from std::
  if (CHECK && __builtin_expect(vany<T>(vabs<T>(v) > R::LIMIT), 0)) {
    s = sin_beyond<T>(v, s);
    c = cos_beyond<T>(v, c);
  }
}

// sin(v) alone (COS = false) or cos(v) alone (COS = true), for forwards that need one of the
// pair (Fourier's cos, SELU variation's sin): in float one polynomial of the pair's (the same
// reduction). Double: the pair's. CHECK as vsincos's.
template <bool COS, typename T, bool CHECK = true>
static LA_INLINE V<T> vsin1(V<T> v) {
  if constexpr (sizeof(T) == 8) {
    V<T> s, c;
    vsincos<T, CHECK>(v, s, c);
    return COS ? c : s;
  } else {
    using R = Trig<T>;
    VI<T> sign;
    const V<T> r = R::reduce(v, sign), r2 = r * r;
    V<T> out = vflip<T>(COS ? R::cos_half_pi(r2) : R::sin_half_pi(r, r2), sign);
    if (CHECK && __builtin_expect(vany<T>(vabs<T>(v) > R::LIMIT), 0))
      out = COS ? cos_beyond<T>(v, out) : sin_beyond<T>(v, out);
    return out;
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
  template <class X>
  static LA_INLINE X em1_r(X r) {  // (e^r - 1 - r) / r^2
    X p = X{} + 1.0f / 40320; // Horner from 1/8! down to 1/2!, written out (a loop over the
    p = 1.0f / 5040 + r * p;  // constants is left scalar: 2.5x slower)
    p = 1.0f / 720 + r * p;
    p = 1.0f / 120 + r * p;
    p = 1.0f / 24 + r * p;
    p = 1.0f / 6 + r * p;
    return 0.5f + r * p;
  }
  static LA_INLINE V<float> pow2(V<float> k) {  // k integral, -126 <= k <= 127
    VI<float> bits = (__builtin_convertvector(k, VI<float>) + 127) << 23;
    V<float> v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
};

template <>
struct Exp<double> {
  static constexpr double LO = -708.0, HI = 709.0, OVERFLOW = 709.782712893384,
                          LN2_HI = 0.6931471806019545, LN2_LO = -4.2009150726810846e-11;
  template <class X>
  static LA_INLINE X em1_r(X r) {
    X p = X{} + 1.0 / 87178291200.0; // 1/14! down to 1/2!
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
  static LA_INLINE V<double> pow2(V<double> k) {
    // k + 1.5 2^52 holds k in its low bits; shifted into the exponent field (no int64
    // conversion, which AVX2 lacks)
    const V<double> m = k + 6755399441055744.0;
    VI<double> bits;
    std::memcpy(&bits, &m, sizeof bits);
    bits = (bits + 1023) << 52;
    V<double> v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
};

// CHECK = false: the caller knows LO <= t <= HI or t NaN in every lane (no clamp; a NaN t
// gives NaN through the polynomial)
template <typename T, bool CHECK = true>
static LA_INLINE V<T> vexpm1(V<T> t) {
  using E = Exp<T>;
  const V<T> z = CHECK ? vmin<T>(vmax<T>(t, vset(E::LO)), vset(E::HI)) : t;
  const V<T> k = vrint<T>(z * T(1.44269504088896340736));
  const V<T> r = (z - k * E::LN2_HI) - k * E::LN2_LO;
  const V<T> em1 = r + r * r * E::em1_r(r);
  const V<T> scale = E::pow2(k);
  V<T> v = scale * em1 + (scale - T(1));
  if (!CHECK) return v;
  v = vsel<T>(t > E::OVERFLOW, vset(T(INFINITY)), v);
  return vsel<T>(t != t, t, v);  // NaN stays NaN
}


}  // namespace la
