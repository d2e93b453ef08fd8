// Fused CPU kernels for JAX (XLA FFI custom calls): one forward and one backward per family.
//
// Why: XLA's CPU backend fuses an activation's forward well, but its backward needs one
// reduction per parameter (sum_i g_i df/dp_k(x_i)), and XLA runs those as separate passes over
// the tensor (Hermite degree 8: nine, ~4x GELU's fwd+bwd). Here the backward is one pass that
// writes dL/dx and every parameter's partial sums (in double, added in a fixed order), on XLA's
// intra-op thread pool.
//
// Layout: the input is viewed as (outer, C, inner) around the channel axis (C = 1 for shared
// parameters); the parameters arrive as one table (C, P), a row of P numbers per channel, in
// the order learnact/xla_native/__init__.py packs them. Two schedules:
//   * "run": a run of `inner` elements shares one channel's row (shared parameters: the whole
//     tensor is one run, cut in chunks); lanes of a block are consecutive elements;
//   * "lanes": channels last with per-channel rows (inner == 1, C > 1); lanes of a block are
//     consecutive channels, each with its own row (the table is transposed to (P, C)).
// Every family writes its math once, over a block of at most W lanes, with loops over the
// parameter index outside and the lanes inside (so they vectorise for any degree).
//
// Formulas (learnact.core.<family> is the reference; these must agree with its autodiff):
//   hermite             f = sum_k c_k h_k(x), h_k = He_k/k!; tails: P(xb) + P'(xb)(x - xb),
//                       xb = clamp(x, lo, hi)
//   tropical            f = s max_k (m_k x + c_k) + t   (first maximum on ties)
//   tropical_rational   f = s (max_k (p_k x + a_k) - max_k (q_k x + b_k)) + t
//   rational            f = s P(x) / (1 + |A(x)|) + t, A(x) = sum_{k=1..m} b_k x^k
// JAX's own derivative conventions are kept where they matter: d|A|/dA = 1 at A = 0.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

#define LA_XLA_ABI 1

namespace {

constexpr int W = 32;             // lanes per block
constexpr int64_t CHUNK = 16384;  // elements per work item in the "run" schedule
constexpr int ROWS = 64;          // rows per work item in the "lanes" schedule
constexpr int64_t GROUPS = 32;    // groups of items with their own parameter sums (lanes)

// Parameter k of lane j: a shared row (run schedule) or column j of the transposed table.
template <typename T, bool LANES>
struct Par {
  const T* p;
  int64_t ld;  // lanes: C (row stride of the (P, C) table); run: unused
  inline T operator()(int k, int j) const { return LANES ? p[k * ld + j] : p[k]; }
};

// Accumulator of parameter k for lane j (T; flushed into double by the driver).
template <typename T>
struct Acc {
  T* a;
  int64_t ld;
  inline T& operator()(int k, int j) const { return a[k * ld + j]; }
};

struct Cfg {
  int64_t a, b;  // family integers (degree; tails flag / denominator degree)
};

// ------------------------------------------------------------------------------------------
// hermite: row = c_0..c_d [, lo, hi]   (a = d, b = 1 with linear tails)
// ------------------------------------------------------------------------------------------
struct Hermite {
  static int64_t width(const Cfg& c) { return c.a + 1 + (c.b ? 2 : 0); }

  template <typename T, class P>
  static void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    T xb[W], e[W], h0[W], h1[W], f[W], df[W];
    for (int j = 0; j < n; ++j) {
      T v = x[j];
      if (cfg.b) v = std::min(std::max(v, p(d + 1, j)), p(d + 2, j));
      xb[j] = v;
      e[j] = x[j] - v;
      h0[j] = T(1);
      h1[j] = v;
      f[j] = p(0, j) + p(1, j) * v;
      df[j] = p(1, j);
    }
    for (int k = 1; k < d; ++k) {  // h_{k+1} = (x h_k - h_{k-1})/(k+1)
      const T r = T(1) / T(k + 1);
      for (int j = 0; j < n; ++j) {
        T h2 = (xb[j] * h1[j] - h0[j]) * r;
        f[j] += p(k + 1, j) * h2;
        df[j] += p(k + 1, j) * h1[j];
        h0[j] = h1[j];
        h1[j] = h2;
      }
    }
    for (int j = 0; j < n; ++j) y[j] = cfg.b ? f[j] + df[j] * e[j] : f[j];
  }

  template <typename T, class P>
  static void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a;
    T xb[W], e[W], hm2[W], hm1[W], h[W], df[W], ddf[W], gg[W];
    for (int j = 0; j < n; ++j) {
      T v = x[j];
      if (cfg.b) v = std::min(std::max(v, p(d + 1, j)), p(d + 2, j));
      xb[j] = v;
      e[j] = x[j] - v;
      gg[j] = g[j];
      hm2[j] = T(0);
      hm1[j] = T(1);  // h_0
      h[j] = v;       // h_1
      df[j] = p(1, j);
      ddf[j] = T(0);
      acc(0, j) += gg[j];
      acc(1, j) += gg[j] * (v + e[j]);  // h_1 + h_0 e
    }
    for (int k = 2; k <= d; ++k) {  // h_k from h_{k-1}, h_{k-2}
      const T r = T(1) / T(k);
      for (int j = 0; j < n; ++j) {
        T hk = (xb[j] * h[j] - hm1[j]) * r;
        hm2[j] = hm1[j];
        hm1[j] = h[j];
        h[j] = hk;
        df[j] += p(k, j) * hm1[j];
        ddf[j] += p(k, j) * hm2[j];
        acc(k, j) += gg[j] * (hk + hm1[j] * e[j]);
      }
    }
    for (int j = 0; j < n; ++j) gx[j] = gg[j] * df[j];
    if (cfg.b) {  // d/dlo, d/dhi: P''(xb) (x - xb) on the side that clamps
      for (int j = 0; j < n; ++j) {
        T t = gg[j] * ddf[j] * e[j];
        acc(d + 1, j) += x[j] < p(d + 1, j) ? t : T(0);
        acc(d + 2, j) += x[j] > p(d + 2, j) ? t : T(0);
      }
    }
  }
};

// ------------------------------------------------------------------------------------------
// tropical envelopes: rows m_0..m_d, c_0..c_d, s, t (tropical) or p, a, q, b, s, t (rational)
// ------------------------------------------------------------------------------------------
#define LA_INLINE inline __attribute__((always_inline))

// best, slope and index of the upper envelope's line
template <typename T, class P>
static LA_INLINE void envelope(const T* __restrict__ x, int n, const P& p, int d, int off,
                               T* __restrict__ best, T* __restrict__ slope,
                               int* __restrict__ arg) {
  for (int j = 0; j < n; ++j) {
    best[j] = p(off, j) * x[j] + p(off + d + 1, j);
    slope[j] = p(off, j);
    arg[j] = 0;
  }
  for (int k = 1; k <= d; ++k)
    for (int j = 0; j < n; ++j) {
      T v = p(off + k, j) * x[j] + p(off + d + 1 + k, j);
      // all three selected, then all three stored: GCC 12 leaves the loop scalar when each
      // select is stored as it is made (5x slower)
      T b = best[j], s = slope[j];
      int a = arg[j];
      const bool up = v > b;
      b = up ? v : b;
      s = up ? p(off + k, j) : s;
      a = up ? k : a;
      best[j] = b;
      slope[j] = s;
      arg[j] = a;
    }
}

template <typename T>
static LA_INLINE void envelope_grad(const T* x, const T* w, int n, const int* arg, int d,
                                    int off, const Acc<T>& acc) {
  for (int k = 0; k <= d; ++k)
    for (int j = 0; j < n; ++j) {
      T t = arg[j] == k ? w[j] : T(0);
      acc(off + k, j) += t * x[j];
      acc(off + d + 1 + k, j) += t;
    }
}

struct Tropical {
  static int64_t width(const Cfg& c) { return 2 * (c.a + 1) + 2; }

  template <typename T, class P>
  static void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    T best[W], slope[W];
    int arg[W];
    envelope(x, n, p, d, 0, best, slope, arg);
    for (int j = 0; j < n; ++j) y[j] = p(2 * d + 2, j) * best[j] + p(2 * d + 3, j);
  }

  template <typename T, class P>
  static void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a;
    T best[W], slope[W], w[W];
    int arg[W];
    envelope(x, n, p, d, 0, best, slope, arg);
    for (int j = 0; j < n; ++j) {
      T s = p(2 * d + 2, j);
      w[j] = g[j] * s;
      gx[j] = w[j] * slope[j];
      acc(2 * d + 2, j) += g[j] * best[j];
      acc(2 * d + 3, j) += g[j];
    }
    envelope_grad(x, w, n, arg, d, 0, acc);
  }
};

struct TropicalRational {
  static int64_t width(const Cfg& c) { return 4 * (c.a + 1) + 2; }

  template <typename T, class P>
  static void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a, q = 2 * d + 2, s = 4 * d + 4;
    T b1[W], s1[W], b2[W], s2[W];
    int a1[W], a2[W];
    envelope(x, n, p, d, 0, b1, s1, a1);
    envelope(x, n, p, d, q, b2, s2, a2);
    for (int j = 0; j < n; ++j) y[j] = p(s, j) * (b1[j] - b2[j]) + p(s + 1, j);
  }

  template <typename T, class P>
  static void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a, q = 2 * d + 2, s = 4 * d + 4;
    T b1[W], s1[W], b2[W], s2[W], w[W], wn[W];
    int a1[W], a2[W];
    envelope(x, n, p, d, 0, b1, s1, a1);
    envelope(x, n, p, d, q, b2, s2, a2);
    for (int j = 0; j < n; ++j) {
      w[j] = g[j] * p(s, j);
      wn[j] = -w[j];
      gx[j] = w[j] * (s1[j] - s2[j]);
      acc(s, j) += g[j] * (b1[j] - b2[j]);
      acc(s + 1, j) += g[j];
    }
    envelope_grad(x, w, n, a1, d, 0, acc);
    envelope_grad(x, wn, n, a2, d, q, acc);
  }
};

// ------------------------------------------------------------------------------------------
// rational: row = a_0..a_n, b_1..b_m, s, t   (a = n, b = m)
// ------------------------------------------------------------------------------------------
struct Rational {
  static int64_t width(const Cfg& c) { return c.a + 1 + c.b + 2; }

  template <typename T, class P>
  static LA_INLINE void values(const T* x, int n, const P& p, const Cfg& cfg, T* num, T* den) {
    const int nn = (int)cfg.a, m = (int)cfg.b;
    for (int j = 0; j < n; ++j) {
      num[j] = p(nn, j);
      den[j] = p(nn + m, j);
    }
    for (int k = nn - 1; k >= 0; --k)
      for (int j = 0; j < n; ++j) num[j] = num[j] * x[j] + p(k, j);
    for (int k = m - 1; k >= 1; --k)
      for (int j = 0; j < n; ++j) den[j] = den[j] * x[j] + p(nn + k, j);
    for (int j = 0; j < n; ++j) den[j] = den[j] * x[j];  // A(x)
  }

  // acc(off + k) += w x^k and dv += k p(off + k) x^{k-1}, k = 1..top
  template <typename T, class P>
  static LA_INLINE void powers(const T* x, int n, int top, const T* w, const P& p, int off,
                            const Acc<T>& acc, T* dv) {
    T xk[W], xk1[W];
    for (int j = 0; j < n; ++j) {
      xk1[j] = T(1);
      xk[j] = x[j];
    }
    for (int k = 1; k <= top; ++k)
      for (int j = 0; j < n; ++j) {
        acc(off + k, j) += w[j] * xk[j];
        dv[j] += T(k) * p(off + k, j) * xk1[j];
        xk1[j] = xk[j];
        xk[j] = xk[j] * x[j];
      }
  }

  template <typename T, class P>
  static void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int s = (int)(cfg.a + 1 + cfg.b);
    T num[W], a[W];
    values(x, n, p, cfg, num, a);
    for (int j = 0; j < n; ++j) y[j] = p(s, j) * (num[j] / (T(1) + std::abs(a[j]))) + p(s + 1, j);
  }

  template <typename T, class P>
  static void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int nn = (int)cfg.a, m = (int)cfg.b, s = nn + 1 + m;
    T num[W], a[W], q[W], sg[W], wn[W], wd[W], dnum[W], da[W];
    values(x, n, p, cfg, num, a);
    for (int j = 0; j < n; ++j) {
      T den = T(1) + std::abs(a[j]);
      q[j] = num[j] / den;
      sg[j] = a[j] >= T(0) ? T(1) : T(-1);
      wn[j] = g[j] * p(s, j) / den;       // dL/dP
      wd[j] = -wn[j] * q[j] * sg[j];      // dL/dA
      acc(s, j) += g[j] * q[j];
      acc(s + 1, j) += g[j];
      acc(0, j) += wn[j];
      dnum[j] = T(0);
      da[j] = T(0);
    }
    powers(x, n, nn, wn, p, 0, acc, dnum);  // numerator: x^k, k = 1..n
    powers(x, n, m, wd, p, nn, acc, da);    // denominator: x^k, k = 1..m
    for (int j = 0; j < n; ++j) gx[j] = wn[j] * dnum[j] + wd[j] * da[j];
  }
};

// sin, cos and expm1 over a block: vecmath.h (Trig<T>, Exp<T>, block helpers)
#include "vecmath.h"

// ------------------------------------------------------------------------------------------
// fourier: row = bias, amplitude_1..d, frequency_1..d, phase_1..d   (a = d)
// ------------------------------------------------------------------------------------------
struct Fourier {
  static int64_t width(const Cfg& c) { return 1 + 3 * c.a; }

  template <typename T, class P>
  static void fwd(const T* x, T* y, int n, const P& p, const Cfg& cfg) {
    const int d = (int)cfg.a;
    T f[W], t[W], s[W], c[W];
    for (int j = 0; j < n; ++j) f[j] = p(0, j);
    for (int k = 0; k < d; ++k) {
      for (int j = 0; j < n; ++j) t[j] = x[j] * p(1 + d + k, j) - p(1 + 2 * d + k, j);
      sincos_block<T>(t, n, s, c);
      for (int j = 0; j < n; ++j) f[j] += p(1 + k, j) * c[j];
    }
    for (int j = 0; j < n; ++j) y[j] = f[j];
  }

  template <typename T, class P>
  static void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg& cfg) {
    const int d = (int)cfg.a;
    // inputs and parameters copied into the block's own arrays: the stores into acc may
    // not alias them, and the loops vectorise (with raw pointers GCC gives up on the alias
    // checks)
    T xs[W], gs[W], amp[W], fr[W], df[W], t[W], s[W], c[W];
    for (int j = 0; j < n; ++j) {
      xs[j] = x[j];
      gs[j] = g[j];
      df[j] = T(0);
      acc(0, j) += gs[j];
    }
    for (int k = 0; k < d; ++k) {
      for (int j = 0; j < n; ++j) {
        amp[j] = p(1 + k, j);
        fr[j] = p(1 + d + k, j);
        t[j] = xs[j] * fr[j] - p(1 + 2 * d + k, j);
      }
      sincos_block<T>(t, n, s, c);
      for (int j = 0; j < n; ++j) {
        const T as = gs[j] * amp[j] * s[j];  // g c_k sin(theta)
        acc(1 + k, j) += gs[j] * c[j];
        acc(1 + d + k, j) -= as * xs[j];
        acc(1 + 2 * d + k, j) += as;
        df[j] -= amp[j] * fr[j] * s[j];
      }
    }
    for (int j = 0; j < n; ++j) gx[j] = gs[j] * df[j];
  }
};

// ------------------------------------------------------------------------------------------
// selu_variation: row = lam, alpha, beta, gamma, omega, scale, offset
//   f = s lam (x if x > 0 else alpha expm1(beta xn) + gamma sin(omega xn)) + t, xn = min(x, 0)
//   (JAX's tie rule: d min(x, 0)/dx = 1/2 at x = 0)
// ------------------------------------------------------------------------------------------
struct SELUVariation {
  static int64_t width(const Cfg&) { return 7; }

  template <typename T, class P>
  static LA_INLINE void negative(const T* x, int n, const P& p, T* xn, T* e, T* s, T* c) {
    T z[W], w[W];
    for (int j = 0; j < n; ++j) {
      xn[j] = std::min(x[j], T(0));
      z[j] = p(2, j) * xn[j];
      w[j] = p(4, j) * xn[j];
    }
    expm1_block<T>(z, n, e);
    sincos_block<T>(w, n, s, c);
  }

  template <typename T, class P>
  static void fwd(const T* x, T* y, int n, const P& p, const Cfg&) {
    T xn[W], e[W], s[W], c[W];
    negative(x, n, p, xn, e, s, c);
    for (int j = 0; j < n; ++j) {
      const T neg = p(1, j) * e[j] + p(3, j) * s[j];
      y[j] = p(5, j) * (p(0, j) * (x[j] > T(0) ? x[j] : neg)) + p(6, j);
    }
  }

  template <typename T, class P>
  static void bwd(const T* x, const T* g, T* gx, int n, const P& p, const Acc<T>& acc,
                  const Cfg&) {
    T xn[W], e[W], s[W], c[W], xs[W], gs[W], q[7][W];  // own copies, as in Fourier::bwd
    negative(x, n, p, xn, e, s, c);
    for (int j = 0; j < n; ++j) {
      xs[j] = x[j];
      gs[j] = g[j];
    }
    for (int k = 0; k < 7; ++k)
      for (int j = 0; j < n; ++j) q[k][j] = p(k, j);
    for (int j = 0; j < n; ++j) {
      const T la = q[0][j], al = q[1][j], be = q[2][j], ga = q[3][j], om = q[4][j],
              sc = q[5][j];
      const bool pos = xs[j] > T(0);
      const T neg = al * e[j] + ga * s[j];
      const T u = pos ? xs[j] : neg;
      const T gn = pos ? T(0) : gs[j] * sc * la;  // dL/d(neg)
      const T dxn = xs[j] < T(0) ? T(1) : T(0.5);
      q[0][j] = gs[j] * sc * u;  // the terms, overwriting the parameters
      q[1][j] = gn * e[j];
      q[2][j] = gn * al * (e[j] + T(1)) * xn[j];
      q[3][j] = gn * s[j];
      q[4][j] = gn * ga * c[j] * xn[j];
      q[5][j] = gs[j] * la * u;
      q[6][j] = gs[j];
      gx[j] = pos ? gs[j] * sc * la : gn * (al * be * (e[j] + T(1)) + ga * om * c[j]) * dxn;
    }
    // one accumulator row per loop: seven rows in one loop need more alias checks than GCC
    // makes, and it stays scalar (3.5x slower)
    for (int k = 0; k < 7; ++k)
      for (int j = 0; j < n; ++j) acc(k, j) += q[k][j];
  }
};

// ------------------------------------------------------------------------------------------
// driver
// ------------------------------------------------------------------------------------------

// Runs body(item) for item in [0, items) on up to `workers` threads: the caller and tasks on
// XLA's pool. The caller works too and waits only for the items (not for the tasks to start:
// XLA may run this call on a pool thread while the other threads are busy, even with another
// such call), so it cannot deadlock; a task that starts late finds no item and touches only
// the shared counters, which it keeps alive.
template <typename F>
void parallel(ffi::ThreadPool& pool, int64_t items, int64_t workers, F&& body) {
  if (workers <= 1 || items <= 1) {
    for (int64_t i = 0; i < items; ++i) body(i);
    return;
  }
  struct Shared {
    std::atomic<int64_t> next{0}, done{0};
    std::mutex m;
    std::condition_variable cv;
  };
  auto st = std::make_shared<Shared>();
  auto* fn = &body;
  auto work = [st, fn, items] {
    for (int64_t i; (i = st->next.fetch_add(1)) < items;) {
      (*fn)(i);
      if (st->done.fetch_add(1) + 1 == items) {
        std::lock_guard<std::mutex> lock(st->m);
        st->cv.notify_all();
      }
    }
  };
  for (int64_t w = 1; w < workers; ++w) pool.Schedule(decltype(work)(work));  // a copy each
  work();
  std::unique_lock<std::mutex> lock(st->m);
  st->cv.wait(lock, [&] { return st->done.load() == items; });
}

int64_t worker_count(ffi::ThreadPool& pool, int64_t items) {
  return std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), items));
}

struct Shape {
  int64_t outer, channels, inner;
  bool lanes() const { return channels > 1 && inner == 1; }
};

template <typename T>
std::vector<T> transposed(const T* table, int64_t rows, int64_t cols) {
  std::vector<T> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = table[r * cols + c];
  return out;
}

template <class F, typename T>
void forward(ffi::ThreadPool& pool, const T* x, const T* table, T* y, Shape sh, Cfg cfg) {
  const int64_t P = F::width(cfg), C = sh.channels;
  if (sh.lanes()) {
    std::vector<T> tt = transposed(table, C, P);
    const int64_t items = (sh.outer + ROWS - 1) / ROWS;
    parallel(pool, items, worker_count(pool, items), [&](int64_t it) {
      for (int64_t r = it * ROWS; r < std::min(sh.outer, (it + 1) * ROWS); ++r)
        for (int64_t c0 = 0; c0 < C; c0 += W) {
          const int n = (int)std::min<int64_t>(W, C - c0);
          Par<T, true> p{tt.data() + c0, C};
          F::template fwd<T>(x + r * C + c0, y + r * C + c0, n, p, cfg);
        }
    });
    return;
  }
  const int64_t per_run = (sh.inner + CHUNK - 1) / CHUNK, runs = sh.outer * C;
  const int64_t items = runs * per_run;
  parallel(pool, items, worker_count(pool, items), [&](int64_t it) {
    const int64_t run = it / per_run, c = run % C;
    const int64_t lo = (it % per_run) * CHUNK, hi = std::min(sh.inner, lo + CHUNK);
    const T* xr = x + run * sh.inner;
    T* yr = y + run * sh.inner;
    Par<T, false> p{table + c * P, 0};
    for (int64_t i = lo; i < hi; i += W)
      F::template fwd<T>(xr + i, yr + i, (int)std::min<int64_t>(W, hi - i), p, cfg);
  });
}

// Parameter sums are formed per work item (run schedule) or per one of at most GROUPS
// contiguous groups of items (lanes schedule) and added in a fixed order: the gradients do
// not depend on the number of threads or on which thread ran what.
template <class F, typename T>
void backward(ffi::ThreadPool& pool, const T* x, const T* g, const T* table, T* gx, T* gtable,
              Shape sh, Cfg cfg) {
  const int64_t P = F::width(cfg), C = sh.channels;
  std::vector<double> total(C * P, 0.0);  // (C, P)
  if (sh.lanes()) {
    std::vector<T> tt = transposed(table, C, P);
    const int64_t items = (sh.outer + ROWS - 1) / ROWS;
    const int64_t groups = std::min<int64_t>(items, GROUPS);
    std::vector<double> sums(groups * P * C, 0.0);  // per group (P, C)
    parallel(pool, groups, worker_count(pool, groups), [&](int64_t gi) {
      std::vector<T> lane(P * C);
      T* a = lane.data();
      double* s = sums.data() + gi * P * C;
      for (int64_t it = items * gi / groups; it < items * (gi + 1) / groups; ++it) {
        std::fill(a, a + P * C, T(0));
        for (int64_t r = it * ROWS; r < std::min(sh.outer, (it + 1) * ROWS); ++r)
          for (int64_t c0 = 0; c0 < C; c0 += W) {
            const int n = (int)std::min<int64_t>(W, C - c0);
            Par<T, true> p{tt.data() + c0, C};
            Acc<T> acc{a + c0, C};
            F::template bwd<T>(x + r * C + c0, g + r * C + c0, gx + r * C + c0, n, p, acc,
                               cfg);
          }
        for (int64_t i = 0; i < P * C; ++i) s[i] += (double)a[i];
      }
    });
    for (int64_t gi = 0; gi < groups; ++gi)
      for (int64_t k = 0; k < P; ++k)
        for (int64_t c = 0; c < C; ++c) total[c * P + k] += sums[(gi * P + k) * C + c];
  } else {
    const int64_t per_run = (sh.inner + CHUNK - 1) / CHUNK, runs = sh.outer * C;
    const int64_t items = runs * per_run;
    std::vector<double> sums(items * P, 0.0);  // per item (one channel's run or part of it)
    parallel(pool, items, worker_count(pool, items), [&](int64_t it) {
      const int64_t run = it / per_run, c = run % C;
      const int64_t lo = (it % per_run) * CHUNK, hi = std::min(sh.inner, lo + CHUNK);
      const int64_t off = run * sh.inner;
      std::vector<T> lane(P * W, T(0));
      Par<T, false> p{table + c * P, 0};
      Acc<T> acc{lane.data(), W};
      for (int64_t i = lo; i < hi; i += W)
        F::template bwd<T>(x + off + i, g + off + i, gx + off + i,
                           (int)std::min<int64_t>(W, hi - i), p, acc, cfg);
      double* s = sums.data() + it * P;
      for (int64_t k = 0; k < P; ++k) {
        double t = 0.0;
        for (int j = 0; j < W; ++j) t += (double)lane[k * W + j];
        s[k] = t;
      }
    });
    for (int64_t it = 0; it < items; ++it) {
      const int64_t c = (it / per_run) % C;
      for (int64_t k = 0; k < P; ++k) total[c * P + k] += sums[it * P + k];
    }
  }
  for (int64_t i = 0; i < C * P; ++i) gtable[i] = (T)total[i];
}

template <typename D>
ffi::Error check(const D& x, const D& table, const Shape& sh, int64_t width) {
  if (sh.outer < 0 || sh.channels < 1 || sh.inner < 0 ||
      sh.outer * sh.channels * sh.inner != (int64_t)x.element_count())
    return ffi::Error::InvalidArgument("learnact: (outer, channels, inner) does not match x");
  if ((int64_t)table.element_count() != sh.channels * width)
    return ffi::Error::InvalidArgument("learnact: parameter table is not (channels, width)");
  return ffi::Error::Success();
}

template <class F, ffi::DataType DT>
ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<DT> x, ffi::Buffer<DT> table,
                   ffi::ResultBuffer<DT> y, int64_t outer, int64_t channels, int64_t inner,
                   int64_t a, int64_t b) {
  Shape sh{outer, channels, inner};
  Cfg cfg{a, b};
  if (auto err = check(x, table, sh, F::width(cfg)); err.failure()) return err;
  forward<F>(pool, x.typed_data(), table.typed_data(), y->typed_data(), sh, cfg);
  return ffi::Error::Success();
}

template <class F, ffi::DataType DT>
ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<DT> x, ffi::Buffer<DT> g,
                    ffi::Buffer<DT> table, ffi::ResultBuffer<DT> gx, ffi::ResultBuffer<DT> gt,
                    int64_t outer, int64_t channels, int64_t inner, int64_t a, int64_t b) {
  Shape sh{outer, channels, inner};
  Cfg cfg{a, b};
  if (auto err = check(x, table, sh, F::width(cfg)); err.failure()) return err;
  backward<F>(pool, x.typed_data(), g.typed_data(), table.typed_data(), gx->typed_data(),
              gt->typed_data(), sh, cfg);
  return ffi::Error::Success();
}

// the layout and family integers every handler takes as attributes
template <typename B>
auto with_attributes(B binding) {
  return std::move(binding)
      .template Attr<int64_t>("outer")
      .template Attr<int64_t>("channels")
      .template Attr<int64_t>("inner")
      .template Attr<int64_t>("a")
      .template Attr<int64_t>("b");
}

template <ffi::DataType DT>
auto forward_binding() {  // x, table -> y
  using Buf = ffi::Buffer<DT>;
  return with_attributes(ffi::Ffi::Bind()
                             .Ctx<ffi::ThreadPool>()
                             .template Arg<Buf>()
                             .template Arg<Buf>()
                             .template Ret<Buf>());
}

template <ffi::DataType DT>
auto backward_binding() {  // x, g, table -> dx, dtable
  using Buf = ffi::Buffer<DT>;
  return with_attributes(ffi::Ffi::Bind()
                             .Ctx<ffi::ThreadPool>()
                             .template Arg<Buf>()
                             .template Arg<Buf>()
                             .template Arg<Buf>()
                             .template Ret<Buf>()
                             .template Ret<Buf>());
}

}  // namespace

extern "C" int la_xla_abi() { return LA_XLA_ABI; }

// la_<family>_{fwd,bwd}_{f32,f64}
#define LA_FAMILY(name, F)                                                                  \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_fwd_f32, (Forward<F, ffi::F32>),                 \
                                forward_binding<ffi::F32>());                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_fwd_f64, (Forward<F, ffi::F64>),                 \
                                forward_binding<ffi::F64>());                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_bwd_f32, (Backward<F, ffi::F32>),                \
                                backward_binding<ffi::F32>());                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_bwd_f64, (Backward<F, ffi::F64>),                \
                                backward_binding<ffi::F64>());

LA_FAMILY(hermite, Hermite)
LA_FAMILY(tropical, Tropical)
LA_FAMILY(tropical_rational, TropicalRational)
LA_FAMILY(rational, Rational)
LA_FAMILY(fourier, Fourier)
LA_FAMILY(selu_variation, SELUVariation)
