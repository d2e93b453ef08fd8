// Rational (Pade, safe denominator): f = s P(x) / (1 + |A(x)|) + t, A(x) = sum_{k=1..m} b_k x^k,
// evaluated scaled so that nothing overflows before f does
// (d|A|/dA at A = 0: the binding's convention, Cfg::ties)
// The family's fused CPU kernel (learnact/core/families.py defines the family, its table
// row and the formula these must agree with); run by native/schedule.h.
#pragma once

#include "common.h"

namespace la {

// ------------------------------------------------------------------------------------------
// rational: row = a_0..a_n, b_1..b_m, s, t   (a = n, b = m)
// ------------------------------------------------------------------------------------------
struct Rational {
  static constexpr bool by_vector = true;  // common.h
  static int64_t width(const Cfg& c) { return c.a + 1 + c.b + 2; }

  // Scaled (learnact/functional/rational.py): S = max(1, |x|), r = 1/S, u = x r; the
  // homogeneous Horner sums N = S^-n P, B = S^-m A (and d/du) never overflow, and
  // f = s S^(n-m) N / D + t with D = r^m + |B|. Equal to the plain sums for |x| <= 1.
  static constexpr int R = 32;  // bounds the exponents of S: degrees <= 16 (core/families.py)

  // SCALED = false: the plain sums (S = r = 1, u = x), for blocks that plain_ok admits
  template <typename T, bool SCALED = true>
  struct Scaled {
    V<T> big, r, u;
    Scaled() = default;
    LA_INLINE explicit Scaled(V<T> x) {
      if (!SCALED) {
        big = r = vset(T(1));
        u = x;
        return;
      }
      big = vmax<T>(vabs<T>(x), vset(T(1)));
      r = T(1) / big;
      // u = x r = x clipped to [-1, 1], computed so: r is subnormal from |x| = 2^126, and
      // XLA runs custom calls with subnormals flushed to 0 (u = 0 gave 0/0 there); NaN kept
      u = vmin<T>(vmax<T>(x, vset(T(-1))), vset(T(1)));
    }
    // S^i (r^-i for i < 0), by i products from 1
    LA_INLINE V<T> pow(int i) const {
      V<T> v = vset(T(1));
      if (!SCALED) return v;
      for (int k = 0; k < i; ++k) v *= big;
      for (int k = 0; k < -i; ++k) v *= r;
      return v;
    }
  };

  // N, N' (d/du) over a_0..a_n; B, B' over b_1..b_m (B = u sum_k b_k u^(k-1) r^(m-k))
  template <typename T, bool SCALED, class P>
  static LA_INLINE void sums(const Scaled<T, SCALED>& sc, const P& p, int64_t j, const Cfg& cfg,
                             V<T>& num, V<T>& dnum, V<T>& a, V<T>& da) {
    const int nn = (int)cfg.a, m = (int)cfg.b;
    num = p(nn, j);
    dnum = vset(T(0));
    a = p(nn + m, j);
    da = vset(T(0));
    V<T> rk = vset(T(1));
    for (int k = nn - 1; k >= 0; --k) {
      if (SCALED) rk *= sc.r;
      dnum = dnum * sc.u + num;
      num = num * sc.u + (SCALED ? p(k, j) * rk : p(k, j));
    }
    rk = vset(T(1));
    for (int k = m - 1; k >= 1; --k) {
      if (SCALED) rk *= sc.r;
      da = da * sc.u + a;
      a = a * sc.u + (SCALED ? p(nn + k, j) * rk : p(nn + k, j));
    }
    da = da * sc.u + a;  // times u: B' = (sum) + u (sum)'
    a = a * sc.u;
  }

  // Blocks whose inputs all have |x| <= M take the plain sums (no scale: one division per
  // element instead of two, no powers of S). M from the whole table, once per call (into
  // cfg.bound): with c its largest |a_k|, |b_k|, every sum and term stays below
  // c (n + m + 2)^2 M^(n+m) <= 2^100 (2^1000 in double), far from overflow. Where |x| <= 1
  // the plain sums are the scaled ones exactly. A NaN coefficient makes M NaN and x NaN or
  // infinite fails the test (the scaled path then). Shared rows, normal inputs, one thread
  // (Xeon): forward 0.62 -> 0.37, backward 1.2 -> 0.88 ns/element; the op's eager fwd+bwd
  // 6.3-6.6 -> 4.2 ms. (Testing the bound per block from the row cost more than it saved.)
  template <typename T>
  static void prepare(const T* table, int64_t channels, Cfg& cfg) {
    const int64_t P = width(cfg), d = cfg.a + cfg.b;
    double c = 0;
    for (int64_t r = 0; r < channels; ++r)
      for (int64_t k = 0; k <= d; ++k) {
        const double v = std::abs((double)table[r * P + k]);
        if (!(v <= c)) c = v;  // NaN kept
      }
    const double lim = sizeof(T) == 4 ? 0x1p100 : 0x1p1000;
    const double M = 0.99 * std::pow(lim / (std::max(c, 1e-300) * double((d + 2) * (d + 2))),
                                     1.0 / double(d));
    cfg.bound = std::min(M, 1e30);  // a float still (NaN stays NaN: std::min returns M)
  }

  template <typename T>
  static LA_INLINE bool plain_ok(const T* x, const Cfg& cfg) {
    V<T> mx = vabs<T>(vload(x));
    for (int u = 1; u < U; ++u) mx = vmax<T>(vabs<T>(vload(x + u * cfg.step)), mx);  // NaN kept
    return !vany<T>(~(mx <= (T)cfg.bound));
  }

  template <typename T, class P>
  static LA_INLINE void fwd(const T* x, T* y, const P& p, const Cfg& cfg) {
    if (plain_ok<T>(x, cfg))
      fwd_sums<T, false>(x, y, p, cfg);
    else
      fwd_sums<T, true>(x, y, p, cfg);
  }
  template <typename T, class P, class A>
  static LA_INLINE void bwd(const T* x, const T* g, T* gx, const P& p, const A& acc,
                            const Cfg& cfg) {
    if (plain_ok<T>(x, cfg))
      bwd_sums<T, false>(x, g, gx, p, acc, cfg);
    else
      bwd_sums<T, true>(x, g, gx, p, acc, cfg);
  }

  // One vector at a time (u outermost): the ten vectors a lane needs, times U, spilled
  // (backward 1.2x slower on AVX-512, 1.4x on AVX2); Horner's chains are short.
  template <typename T, bool SCALED, class P>
  static LA_INLINE void fwd_sums(const T* x, T* y, const P& p, const Cfg& cfg) {
    const int nn = (int)cfg.a, m = (int)cfg.b, s = nn + 1 + m;
    const int e = nn - m;  // f = s S^e N / (r^m + |B|) + t
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      const Scaled<T, SCALED> sc(vload(x + j));
      V<T> num, dnum, a, da;
      sums<T, SCALED>(sc, p, j, cfg, num, dnum, a, da);
      const V<T> den = sc.pow(-m) + vabs<T>(a);
      vstore(y + j, p(s, j) * (num * sc.pow(e) / den) + p(s + 1, j));
    }
  }

  template <typename T, bool SCALED, class P, class A>
  static LA_INLINE void bwd_sums(const T* x, const T* g, T* gx, const P& p, const A& acc,
                                 const Cfg& cfg) {
    const int nn = (int)cfg.a, m = (int)cfg.b, s = nn + 1 + m;
    const T tie = cfg.ties ? T(0) : T(1);
    for (int u = 0; u < U; ++u) {
      const int64_t j = u * cfg.step;
      const Scaled<T, SCALED> sc(vload(x + j));
      V<T> num, dnum, a, da;
      sums<T, SCALED>(sc, p, j, cfg, num, dnum, a, da);
      const V<T> gg = vload(g + j);
      const V<T> inv = T(1) / (sc.pow(-m) + vabs<T>(a));
      const V<T> sg = vsel<T>(a > T(0), vset(T(1)), vsel<T>(a < T(0), vset(T(-1)), vset(tie)));
      const V<T> wn = gg * p(s, j) * inv;          // g s / D
      const V<T> wd = -wn * num * inv * sg;        // -g s sign(B) N / D^2
      vstore(gx + j, (wn * dnum + wd * da) * sc.pow(nn - m - 1));
      acc.add(s, u, gg * num * inv * sc.pow(nn - m));
      acc.add(s + 1, u, gg);
      // S^i for the exponents below (i = k - m, n + k - 2m), each as pow(i) would make it
      const int lo = std::max(m, 2 * m - nn - 1), hi = std::max(nn - m, 0);
      V<T> pw[2 * R + 1];
      pw[R] = vset(T(1));
      if (SCALED) {  // plain: every power is 1
        for (int i = 1; i <= hi; ++i) pw[R + i] = pw[R + i - 1] * sc.big;
        for (int i = 1; i <= lo; ++i) pw[R - i] = pw[R - i + 1] * sc.r;
      }
      V<T> uk = vset(T(1));
      for (int k = 0; k <= nn || k <= m; ++k) {  // dL/da_k = wn u^k S^(k-m),
        if (k > 0) uk *= sc.u;                   // dL/db_k = wd u^k S^(n+k-2m)
        if (k <= nn) acc.add(k, u, SCALED ? wn * uk * pw[R + k - m] : wn * uk);
        if (k >= 1 && k <= m)
          acc.add(nn + k, u, SCALED ? wd * uk * pw[R + nn + k - 2 * m] : wd * uk);
      }
    }
  }
};

}  // namespace la
