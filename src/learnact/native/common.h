// What every family kernel shares: the SIMD vector type, the block of lanes a kernel computes
// at once, how it reads its parameters and accumulates their gradients, and the family
// integers. Included by each family's header (native/<family>.h); the schedules that run them:
// native/schedule.h.
//
// A family is a struct with
//   static int64_t width(const Cfg&)              its row of parameters per channel
//   static void fwd(x, y, p, cfg)                 y over one block of W<T> lanes
//   static void bwd(x, g, gx, p, acc, cfg)        dL/dx, and the parameter terms through
//                                                 acc.sum(k, t) (a block) or acc.add(k, u, v)
// written on vectors V<T> (GCC/Clang vector extensions, one SIMD register each): a block is
// U vectors side by side, each step of a family's recurrence (Hermite's h_k, Horner, the
// tropical maxima) done for the U vectors before the next, so U independent chains keep the
// FMA units busy (one chain is latency-bound: hermite d8 ran 0.46 ns/element forward with
// the lanes in memory arrays, 0.35 so; the backward 1.09 -> 0.55, single thread, AVX-512).
// Loops over a block's vectors: `for (int u = 0; u < U; ++u)` with j = u * L<T> the first
// lane; U is a constant, so the loops unroll and the per-vector arrays live in registers.
// Families without a long chain (rational, SELU variation) loop over u outermost instead:
// U copies of their many live vectors would spill.
// Blocks are always full: the schedules pad a ragged end with x = 0, g = 0 (and zero
// parameter columns in the lanes schedule), whose terms are then exact zeros.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define LA_INLINE inline __attribute__((always_inline))

namespace la {

#ifndef LA_VBYTES
#if defined(__AVX512F__)
#define LA_VBYTES 64
#elif defined(__AVX__)
#define LA_VBYTES 32
#else
#define LA_VBYTES 16
#endif
#endif
#ifndef LA_U
#if LA_VBYTES == 64
#define LA_U 4  // 32 vector registers
#else
#define LA_U 2  // 16
#endif
#endif

template <typename T>
struct VecOf {
  typedef T type __attribute__((vector_size(LA_VBYTES)));
};
template <typename T>
struct IntOf;
template <>
struct IntOf<float> {
  typedef int32_t elem;
  typedef int32_t type __attribute__((vector_size(LA_VBYTES)));
};
template <>
struct IntOf<double> {
  typedef int64_t elem;
  typedef int64_t type __attribute__((vector_size(LA_VBYTES)));
};
template <typename T>
using V = typename VecOf<T>::type;  // one SIMD register of T
template <typename T>
using VI = typename IntOf<T>::type;  // the integers (and compare masks) of V<T>'s lanes
template <typename T>
constexpr int L = LA_VBYTES / sizeof(T);  // lanes per vector
constexpr int U = LA_U;                   // vectors per block
template <typename T>
constexpr int W = U * L<T>;  // lanes per block

template <typename T>
LA_INLINE V<T> vload(const T* p) {
  V<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
LA_INLINE void vstore(T* p, V<T> v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
LA_INLINE V<T> vset(T s) {  // a broadcast: s - 0 is s exactly, so folded (s + 0 turns -0 to 0)
  return s - V<T>{};
}
// min/max with std::min/std::max's NaN rule: the first argument when unordered
template <typename T>
LA_INLINE V<T> vmin(V<T> a, V<T> b) {
  return b < a ? b : a;
}
template <typename T>
LA_INLINE V<T> vmax(V<T> a, V<T> b) {
  return a < b ? b : a;
}
template <typename T>
LA_INLINE V<T> vabs(V<T> a) {  // the sign bit cleared (NaN stays NaN, -0 -> 0)
  VI<T> bits;
  std::memcpy(&bits, &a, sizeof a);
  bits &= ~(VI<T>{} + std::numeric_limits<typename IntOf<T>::elem>::min());
  std::memcpy(&a, &bits, sizeof a);
  return a;
}
template <typename T>
LA_INLINE V<T> vsel(VI<T> m, V<T> a, V<T> b) {
  return m ? a : b;
}
// whether any lane of mask m is set: with AVX-512 a test into a mask register (the compare
// that made m stays a mask: three instructions), else the OR of its halves down to one 64-bit
// word, in registers (GCC < 12 lacks __builtin_shufflevector: lane by lane there)
template <typename T>
LA_INLINE bool vany(VI<T> m) {
#if LA_VBYTES == 64 && defined(__AVX512F__)
  __m512i v;
  std::memcpy(&v, &m, sizeof v);
  return _mm512_test_epi32_mask(v, v) != 0;  // a 64-bit lane is set iff one of its halves is
#elif defined(__clang__) || __GNUC__ >= 12  // __builtin_shufflevector
  typedef uint64_t Q __attribute__((vector_size(LA_VBYTES)));
  Q q;
  std::memcpy(&q, &m, sizeof q);
#if LA_VBYTES == 64
  typedef uint64_t H __attribute__((vector_size(32)));
  const H h = __builtin_shufflevector(q, q, 0, 1, 2, 3) | __builtin_shufflevector(q, q, 4, 5, 6, 7);
#else
  const Q h = q;
#endif
#if LA_VBYTES >= 32
  typedef uint64_t G __attribute__((vector_size(16)));
  const G g = __builtin_shufflevector(h, h, 0, 1) | __builtin_shufflevector(h, h, 2, 3);
#else
  const Q g = h;
#endif
  return (g[0] | g[1]) != 0;
#else
  bool any = false;
  for (int i = 0; i < L<T>; ++i) any |= m[i] != 0;
  return any;
#endif
}

// Where a block's U vectors lie and whose parameters they take (Cfg::step: vector u starts
// at element u * step):
//   run    consecutive vectors of one run (step L), one shared row of parameters (broadcast)
//   rows   the same L channels in U consecutive rows (step = the row length C), every vector
//          the same columns (per channel, channels last: each column read once per block, and
//          the backward's parameter terms sum over the block's vectors as the shared ones do)
//   lanes  consecutive vectors along the channels (step L), a column of the transposed table
//          per lane (the per-channel backward of families with by_vector, schedule.h)
enum class Lay { run, lanes, rows };

// Parameter k of vector u's lanes, j = u * step: a broadcast of the shared row (run), or
// lanes j.. (lanes) or the block's columns (rows) of the transposed (P, Cp) table.
template <typename T, Lay M>
struct Par {
  const T* p;
  int64_t ld;  // lanes, rows: the row stride of the (P, Cp) table; run: unused
  LA_INLINE V<T> operator()(int k, int64_t j) const {
    if (M == Lay::run) return vset(p[k]);
    return vload(p + k * ld + (M == Lay::lanes ? j : 0));
  }
};

// Accumulators of the parameters' terms (T; the schedule flushes them into double): vector
// u's accumulator of parameter k at a + k * ld + u * sub, each holding the sum of L lanes (run
// schedule: one shared row, sub = L; rows: the block's L columns, sub = 0, every vector's
// terms belong to the same columns; lanes: the vector's own L columns, sub = L).
//   add(k, u, v)   vector u's terms v (one load-add-store)
//   sum(k, t)      a block's terms t(u), u < U, summed in registers first and added once, to
//                  vector 0's accumulator: one load-add-store per block instead of U (the
//                  backward of tropical d8 was bound by these stores, 20 parameters x U per
//                  block). Families whose block loop runs over u outermost (U copies of their
//                  many live vectors would spill) add per vector (rational: by_vector, its
//                  per-channel backward on "lanes" blocks) or sum their few terms in
//                  registers along the loop and add(k, 0, .) once (SELU variation).
template <typename T>
struct Acc {
  T* a;
  int64_t ld, sub;
  LA_INLINE void add(int k, int u, V<T> v) const {
    T* q = a + k * ld + u * sub;
    vstore(q, vload(q) + v);
  }
  template <class Fn>
  LA_INLINE void sum(int k, Fn t) const {
    V<T> s[U];
    for (int u = 0; u < U; ++u) s[u] = t(u);
    for (int h = 1; h < U; h *= 2)  // pairwise: (t0 + t1) + (t2 + t3)
      for (int u = 0; u + h < U; u += 2 * h) s[u] += s[u + h];
    add(k, 0, s[0]);
  }
};

struct Cfg {
  int64_t a, b;  // family integers (degree; tails flag / denominator degree)
  // derivative conventions at the kinks, which frameworks' autodiff choose differently:
  // 0: JAX's (d|A|/dA = 1 at A = 0, d min(x, 0)/dx = 1/2 at 0), 1: PyTorch's (sign(0) = 0,
  // d clamp(x, max=0)/dx = 1 at 0); each binding passes its framework's
  int64_t ties = 0;
  int64_t step = 0;  // vector u of a block starts at element u * step (the schedule sets it)
  double bound = 0;  // a family's number from its whole table (F::prepare, schedule.h)
};

}  // namespace la
