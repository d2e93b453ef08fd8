// Fourier: f = a_0 + sum_k c_k cos(w_k x - phi_k)   (w_k x clipped: vecmath.h clipped_phase)
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"
#include "vecmath.h"

namespace la {

// ------------------------------------------------------------------------------------------
// fourier: row = bias, amplitude_1..d, frequency_1..d, phase_1..d   (a = d)
// ------------------------------------------------------------------------------------------
struct Fourier {
  static constexpr bool by_vector = false;  // common.h
  static int64_t width(const Cfg& c) { return 1 + 3 * c.a; }

  // theta_k = w_k x - phi_k (w_k x clipped; CHECK = false: the block is in_range, where
  // |w_k x| < LIMIT and the clip changes nothing)
  template <typename T, bool CHECK, class P>
  static LA_INLINE V<T> phase(V<T> xv, const P& p, int d, int k, int64_t j) {
    return clipped_phase<T, CHECK>(xv, p(1 + d + k, j)) - p(1 + 2 * d + k, j);
  }

  // whether every phase of the block is within the sin/cos polynomials' range: |x| max|w_k| +
  // max|phi_k| below LIMIT (with 1% to spare for the roundings of w x - phi), one test per
  // block instead of one per term and vector (the test, a reduction to one bit, was a fifth
  // of the forward's instructions); NaN or infinite x or w fail it (the checked path then)
  template <typename T, class P>
  static LA_INLINE bool in_range(const V<T>* xv, const P& p, int d, const Cfg& cfg) {
    VI<T> out = VI<T>{};
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      V<T> mw = vset(T(0)), mp = vset(T(0));
      for (int k = 0; k < d; ++k) {
        mw = vmax<T>(vabs<T>(p(1 + d + k, j)), mw);  // a NaN parameter kept
        mp = vmax<T>(vabs<T>(p(1 + 2 * d + k, j)), mp);
      }
      out |= ~(vabs<T>(xv[u]) * mw + mp <= T(0.99) * Trig<T>::LIMIT);
    }
    return !vany<T>(out);
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, const P& p, const Cfg& cfg) {
    V<T> xv[U];
    for (int u = 0; u < U; ++u) xv[u] = vload(x + u * cfg.step);
    if (__builtin_expect(in_range<T>(xv, p, (int)cfg.a, cfg), 1))
      fwd_terms<T, false>(xv, y, p, cfg);
    else
      fwd_terms<T, true>(xv, y, p, cfg);
  }

  template <typename T, bool CHECK, class P>
  static LA_INLINE void fwd_terms(const V<T>* xv, T* y, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> f[U];
    for (int u = 0; u < U; ++u) f[u] = p(0, u * cfg.step);
    for (int k = 0; k < d; ++k)
      for (int u = 0; u < U; ++u) {
        const int64_t j = u * cfg.step;
        f[u] += p(1 + k, j) * vsin1<true, T, CHECK>(phase<T, CHECK>(xv[u], p, d, k, j));
      }
    for (int u = 0; u < U; ++u) vstore(y + u * cfg.step, f[u]);
  }

  template <typename T, class P, class A>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, const P& p, const A& acc,
                            const Cfg& cfg) {
    V<T> xv[U];
    for (int u = 0; u < U; ++u) xv[u] = vload(x + u * cfg.step);
    if (__builtin_expect(in_range<T>(xv, p, (int)cfg.a, cfg), 1))
      bwd_terms<T, false>(xv, g, gx, p, acc, cfg);
    else
      bwd_terms<T, true>(xv, g, gx, p, acc, cfg);
  }

  template <typename T, bool CHECK, class P, class A>
  static LA_INLINE void bwd_terms(const V<T>* xv, const T* g, T* gx, const P& p, const A& acc,
                                  const Cfg& cfg) {
    const int d = (int)cfg.a;
    V<T> gg[U], df[U];
    for (int u = 0; u < U; ++u) {
      gg[u] = vload(g + u * cfg.step);
      df[u] = vset(T(0));
    }
    acc.sum(0, [&](int u) { return gg[u]; });
    for (int k = 0; k < d; ++k) {
      V<T> c[U], as[U];
      for (int u = 0; u < U; ++u) {
        const int64_t j = u * cfg.step;
        const V<T> amp = p(1 + k, j), fr = p(1 + d + k, j);
        V<T> s;
        vsincos<T, CHECK>(phase<T, CHECK>(xv[u], p, d, k, j), s, c[u]);
        as[u] = gg[u] * amp * s;  // g c_k sin(theta)
        df[u] -= amp * fr * s;
      }
      acc.sum(1 + k, [&](int u) { return gg[u] * c[u]; });
      acc.sum(1 + d + k, [&](int u) { return -(as[u] * xv[u]); });
      acc.sum(1 + 2 * d + k, [&](int u) { return as[u]; });
    }
    for (int u = 0; u < U; ++u) vstore(gx + u * cfg.step, gg[u] * df[u]);
  }
};

}  // namespace la
