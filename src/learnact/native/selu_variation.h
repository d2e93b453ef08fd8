// SELU variation: f = s lam (x if x > 0 else alpha expm1(beta xn) + gamma sin(omega xn)) + t
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"
#include "vecmath.h"

namespace la {

// ------------------------------------------------------------------------------------------
// selu_variation: row = lam, alpha, beta, gamma, omega, scale, offset
//   f = s lam (x if x > 0 else alpha expm1(beta xn) + gamma sin(omega xn)) + t, xn = min(x, 0)
//   (d min(x, 0)/dx at x = 0: the binding's convention, Cfg::ties)
// ------------------------------------------------------------------------------------------
struct SELUVariation {
  static constexpr bool by_vector = false;  // common.h
  static int64_t width(const Cfg&) { return 7; }

  // the negative branch's pieces at xn = min(x, 0): e = expm1(beta xn), s, c = sin, cos(omega xn)
  // (CHECK: clip omega xn and redo lanes beyond the sin/cos range; false where in_range)
  template <typename T, bool CHECK, class P>
  static LA_INLINE void negative(V<T> xv, const P& p, int64_t j, V<T>& xn, V<T>& e, V<T>& s,
                                 V<T>& c) {
    xn = vmin<T>(xv, vset(T(0)));
    e = vexpm1<T, CHECK>(p(2, j) * xn);
    vsincos<T, CHECK>(clipped_phase<T, CHECK>(xn, p(4, j)), s, c);
  }

  // whether every lane's omega xn is within the sin/cos polynomials' range and beta xn within
  // expm1's: the block's least x times |omega| below LIMIT, times |beta| below Exp::HI (1% to
  // spare; every vector of a block has the same omega and beta in both layouts that run this
  // family), one test per block instead of the clips and range tests per vector. -inf or a
  // NaN parameter fail it; a NaN x, whose results are NaN either way, does not count.
  template <typename T, class P>
  static LA_INLINE bool in_range(const T* x, const P& p, const Cfg& cfg) {
    V<T> lo = vset(T(0));
    for (int u = 0; u < U; ++u) lo = vmin<T>(lo, vload(x + u * cfg.step));
    const V<T> a = vabs<T>(lo);
    return !vany<T>(~(a * vabs<T>(p(4, 0)) <= T(0.99) * Trig<T>::LIMIT) |
                    ~(a * vabs<T>(p(2, 0)) <= T(0.99) * Exp<T>::HI));
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, const P& p, const Cfg& cfg) {
    if (__builtin_expect(in_range<T>(x, p, cfg), 1))
      fwd_terms<T, false>(x, y, p, cfg);
    else
      fwd_terms<T, true>(x, y, p, cfg);
  }
  template <typename T, class P, class A>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, const P& p, const A& acc,
                            const Cfg& cfg) {
    if (__builtin_expect(in_range<T>(x, p, cfg), 1))
      bwd_terms<T, false>(x, g, gx, p, acc, cfg);
    else
      bwd_terms<T, true>(x, g, gx, p, acc, cfg);
  }

  template <typename T, bool CHECK, class P>
  static LA_INLINE void fwd_terms(const T* x, T* y, const P& p, const Cfg& cfg) {
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      const V<T> xv = vload(x + j);
      const V<T> xn = vmin<T>(xv, vset(T(0)));  // the forward needs sin alone
      const V<T> neg = p(1, j) * vexpm1<T, CHECK>(p(2, j) * xn) +
                       p(3, j) * vsin1<false, T, CHECK>(clipped_phase<T, CHECK>(xn, p(4, j)));
      vstore(y + j, p(5, j) * (p(0, j) * vsel<T>(xv > T(0), xv, neg)) + p(6, j));
    }
  }

  template <typename T, bool CHECK, class P, class A>
  static LA_INLINE void bwd_terms(const T* x, const T* g, T* gx, const P& p, const A& acc,
                                  const Cfg& cfg) {
    const T tie = cfg.ties ? T(1) : T(0.5);  // d min(x, 0)/dx at 0: 1 (PyTorch) or 1/2 (JAX)
    // one vector at a time (u outermost: U copies of its live vectors would spill), its seven
    // parameter terms summed over the block in registers, added once per block
    V<T> t[7];
    for (int k = 0; k < 7; ++k) t[k] = vset(T(0));
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      const V<T> xv = vload(x + j), gg = vload(g + j);
      V<T> xn, e, s, c;
      negative<T, CHECK>(xv, p, j, xn, e, s, c);
      const V<T> la = p(0, j), al = p(1, j), be = p(2, j), ga = p(3, j), om = p(4, j),
                 sc = p(5, j);
      const VI<T> pos = xv > T(0);
      const V<T> neg = al * e + ga * s;
      const V<T> v = vsel<T>(pos, xv, neg);
      const V<T> gn = vsel<T>(pos, vset(T(0)), gg * sc * la);  // dL/d(neg)
      const V<T> dxn = vsel<T>(xv < T(0), vset(T(1)), vset(tie));
      t[0] += gg * sc * v;
      t[1] += gn * e;
      t[2] += gn * al * (e + T(1)) * xn;
      t[3] += gn * s;
      t[4] += gn * ga * c * xn;
      t[5] += gg * la * v;
      t[6] += gg;
      vstore(gx + j, vsel<T>(pos, gg * sc * la,
                             gn * (al * be * (e + T(1)) + ga * om * c) * dxn));
    }
    for (int k = 0; k < 7; ++k) acc.add(k, 0, t[k]);  // the block's sums (as Acc::sum's)
  }
};

}  // namespace la
