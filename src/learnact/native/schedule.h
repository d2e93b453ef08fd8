// How a family kernel runs over a tensor, for every binding (the XLA FFI handlers of
// xla_native/families.cc and the C entry points of native/families.cc, which PyTorch calls).
//
// Layout: the input is viewed as (outer, C, inner) around the channel axis (C = 1 for shared
// parameters); the parameters arrive as one table (C, P), a row of P numbers per channel, in
// the order of the family definition's ``table`` (learnact/core/families.py). Two schedules:
//   * "run": a run of `inner` elements shares one channel's row (shared parameters: the whole
//     tensor is one run, cut in chunks); lanes of a block are consecutive elements;
//   * "lanes": channels last with per-channel rows (inner == 1, C > 1); the table is
//     transposed to (P, Cp), Cp = C rounded up to whole blocks with zero columns. Blocks are U
//     rows of the same L channels (Lay::rows): each parameter column is read once per block
//     and the backward's terms sum over the block in registers, as in the run schedule (per
//     channel hermite d8 backward 3.3 -> 1.1 ns/element, tropical d4 3.1 -> 1.0, with the tiles
//     and longer items below; a Xeon with AVX-512, one thread). The backward of families with
//     F::by_vector (per-vector accumulator adds) runs blocks of W consecutive channels of a
//     row instead (Lay::lanes).
// A ragged block (the end of a run, of a row of channels, of an item's rows) runs on
// zero-padded copies.
// Parameter sums are formed per work item (run schedule) or per one of at most GROUPS
// contiguous groups of items (lanes schedule), in double, and added in a fixed order: the
// gradients do not depend on the number of threads or on which thread ran what.
//
// A Runner runs the work items: `int64_t threads() const` and
// `void run(int64_t items, int64_t workers, Body body)` calling body(i) for every i < items
// on up to `workers` threads (the caller's included) and returning when all are done.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"

#ifndef LA_TILE_BYTES
#define LA_TILE_BYTES 131072
#endif

namespace la {

constexpr int64_t CHUNK = 16384;  // elements per work item in the "run" schedule
constexpr int ROWS = 64;          // rows per work item in the "lanes" forward
constexpr int64_t TILE_BYTES = LA_TILE_BYTES;  // bounds a "lanes" backward tile (tile_channels)
constexpr int64_t GROUPS = 32;    // groups of items with their own parameter sums (lanes)

struct Shape {
  int64_t outer, channels, inner;
  bool lanes() const { return channels > 1 && inner == 1; }
};

// F::prepare(table, channels, cfg) (optional): reads the whole (C, P) table once per call
// and sets cfg.bound (rational: its largest coefficient, for the per-block overflow test)
template <class F, class = void>
struct Prepares : std::false_type {};
template <class F>
struct Prepares<F, std::void_t<decltype(&F::template prepare<float>)>> : std::true_type {};

template <class R>
int64_t worker_count(const R& runner, int64_t items) {
  return std::max<int64_t>(1, std::min<int64_t>(runner.threads(), items));
}

// n numbers of T, zero-filled, starting on a 64-byte boundary: the kernels' vector loads and
// stores of parameter columns and accumulators then never straddle two cache lines (with
// std::vector's 16-byte alignment most did: per channel, 768 last, one thread, rational's
// fwd / bwd 0.66 / 1.9 -> 0.54 / 1.55 ns/element, its shared backward's accumulators 0.92 ->
// 0.81, tropical_rational's per-channel backward 2.7 -> 2.5; Xeon, AVX-512)
template <typename T>
class Buffer {
 public:
  explicit Buffer(int64_t n) : raw_(n + 64 / sizeof(T), T(0)) {
    const auto addr = reinterpret_cast<uintptr_t>(raw_.data());
    p_ = raw_.data() + (64 - addr % 64) % 64 / sizeof(T);
  }
  Buffer(const Buffer&) = delete;  // a copy's p_ would point into the original
  Buffer(Buffer&&) = default;      // the vector's storage moves with p_
  T* data() { return p_; }
  const T* data() const { return p_; }
  T& operator[](int64_t i) { return p_[i]; }

 private:
  std::vector<T> raw_;
  T* p_;
};

// the (C, P) table as (P, Cp): column c holds channel c's row, columns C..Cp-1 zeros
template <typename T>
Buffer<T> transposed(const T* table, int64_t rows, int64_t cols, int64_t padded) {
  Buffer<T> out(cols * padded);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * padded + r] = table[r * cols + c];
  return out;
}

// rows per work item of the "lanes" backward: each item's accumulators are zeroed and flushed
// into double once (P Cp numbers), so longer items cost less (256 rows: hermite d8 per channel
// 1.4 -> 1.1 ns/element backward against 64), but at least 16 items while that leaves >= 64
// rows each. A function of the shape alone: the sums' order does not depend on the threads.
inline int64_t backward_rows(int64_t outer) {
  return std::max<int64_t>(ROWS, std::min<int64_t>(4 * ROWS, outer / 16));
}

// channels per tile of the "lanes" backward: as many whole blocks as keep the tile's parameter
// and accumulator columns (2 P numbers per channel) within TILE_BYTES, at least one block.
// Tiles of 64 channels (256 bytes of each row) ran the per-channel backward 2x slower than
// whole rows on a Xeon (the old note found the reverse on an EPYC with the older loop nest);
// 128 KiB keeps 768 channels in one tile for rows of up to 21 parameters (tropical d8, 20,
// ran 1.6 ns/element backward so, 2.7 with 64 KiB) and bounds what must stay in cache.
template <typename T>
int64_t tile_channels(int64_t P) {
  return std::max<int64_t>(1, TILE_BYTES / (2 * P * (int64_t)sizeof(T) * W<T>)) * W<T>;
}

template <typename T>
int64_t padded_channels(int64_t C) {
  return (C + W<T> - 1) / W<T> * W<T>;
}

// One block of n <= W<T> consecutive lanes at x (and g): a full block in place, a ragged one
// through zero-padded copies (x = 0, g = 0: every parameter term of the pad lanes is an exact
// zero). Vectors of a block are consecutive here (step L, set in this inlined copy: a
// constant to the compiler)
template <class F, typename T, class P>
LA_INLINE void fwd_block(const T* x, T* y, int64_t n, const P& p, Cfg cfg) {
  cfg.step = L<T>;
  if (n == W<T>) {
    F::template fwd<T>(x, y, p, cfg);
    return;
  }
  T xs[W<T>] = {}, ys[W<T>];
  std::copy(x, x + n, xs);
  F::template fwd<T>(xs, ys, p, cfg);
  std::copy(ys, ys + n, y);
}

template <class F, typename T, class P, class A>
LA_INLINE void bwd_block(const T* x, const T* g, T* gx, int64_t n, const P& p,
                         const A& acc, Cfg cfg) {
  cfg.step = L<T>;
  if (n == W<T>) {
    F::template bwd<T>(x, g, gx, p, acc, cfg);
    return;
  }
  T xs[W<T>] = {}, gs[W<T>] = {}, gxs[W<T>];
  std::copy(x, x + n, xs);
  std::copy(g, g + n, gs);
  F::template bwd<T>(xs, gs, gxs, p, acc, cfg);
  std::copy(gxs, gxs + n, gx);
}

// One block of the per-channel forward: nr <= U rows of nc <= L channels at x (row length C),
// in place when whole, else through zero-padded copies
template <class F, typename T>
LA_INLINE void fwd_rows_block(const T* x, T* y, int64_t C, int64_t nr, int64_t nc,
                              const Par<T, Lay::rows>& p, Cfg cfg) {
  if (nr == U && nc == L<T>) {
    cfg.step = C;
    F::template fwd<T>(x, y, p, cfg);
    return;
  }
  T xs[W<T>] = {}, ys[W<T>];
  for (int64_t i = 0; i < nr; ++i) std::copy(x + i * C, x + i * C + nc, xs + i * L<T>);
  cfg.step = L<T>;
  F::template fwd<T>(xs, ys, p, cfg);
  for (int64_t i = 0; i < nr; ++i) std::copy(ys + i * L<T>, ys + i * L<T> + nc, y + i * C);
}

template <class F, typename T, class R>
void forward(R& runner, const T* x, const T* table, T* y, Shape sh, Cfg cfg) {
  const int64_t P = F::width(cfg), C = sh.channels;
  if constexpr (Prepares<F>::value) F::prepare(table, C, cfg);
  if (sh.lanes()) {
    const int64_t Cp = padded_channels<T>(C);
    const Buffer<T> tt = transposed(table, C, P, Cp);
    const int64_t items = (sh.outer + ROWS - 1) / ROWS, tile = tile_channels<T>(P);
    runner.run(items, worker_count(runner, items), [&](int64_t it) {
      const int64_t r0 = it * ROWS, r1 = std::min(sh.outer, r0 + ROWS);
      // blocks of U rows of L channels (each parameter column read once per block), a tile of
      // channels down the item's rows at a time (tropical d8 per channel 1.17 -> 0.5
      // ns/element against rows of W-channel blocks, whose columns of all 768 channels did
      // not stay in L1)
      for (int64_t t0 = 0; t0 < C; t0 += tile)
        for (int64_t r = r0; r < r1; r += U)
          for (int64_t c0 = t0; c0 < std::min(C, t0 + tile); c0 += L<T>) {
            const int64_t o = r * C + c0;
            fwd_rows_block<F, T>(x + o, y + o, C, std::min<int64_t>(U, r1 - r),
                                 std::min<int64_t>(L<T>, C - c0),
                                 Par<T, Lay::rows>{tt.data() + c0, Cp}, cfg);
          }
    });
    return;
  }
  const int64_t per_run = (sh.inner + CHUNK - 1) / CHUNK, runs = sh.outer * C;
  const int64_t items = runs * per_run;
  runner.run(items, worker_count(runner, items), [&](int64_t it) {
    const int64_t run = it / per_run, c = run % C;
    const int64_t lo = (it % per_run) * CHUNK, hi = std::min(sh.inner, lo + CHUNK);
    const T* xr = x + run * sh.inner;
    T* yr = y + run * sh.inner;
    Par<T, Lay::run> p{table + c * P, 0};
    for (int64_t i = lo; i < hi; i += W<T>)
      fwd_block<F, T>(xr + i, yr + i, std::min<int64_t>(W<T>, hi - i), p, cfg);
  });
}

// One block of the per-channel backward: nr <= U rows of nc <= L channels at x (row length
// C), in place when whole, else through zero-padded copies (rows of L)
template <class F, typename T>
LA_INLINE void bwd_rows_block(const T* x, const T* g, T* gx, int64_t C, int64_t nr, int64_t nc,
                              const Par<T, Lay::rows>& p, const Acc<T>& acc,
                              Cfg cfg) {
  if (nr == U && nc == L<T>) {
    cfg.step = C;
    F::template bwd<T>(x, g, gx, p, acc, cfg);
    return;
  }
  T xs[W<T>] = {}, gs[W<T>] = {}, gxs[W<T>];
  for (int64_t i = 0; i < nr; ++i) {
    std::copy(x + i * C, x + i * C + nc, xs + i * L<T>);
    std::copy(g + i * C, g + i * C + nc, gs + i * L<T>);
  }
  cfg.step = L<T>;
  F::template bwd<T>(xs, gs, gxs, p, acc, cfg);
  for (int64_t i = 0; i < nr; ++i)
    std::copy(gxs + i * L<T>, gxs + i * L<T> + nc, gx + i * C);
}

template <class F, typename T, class R>
void backward(R& runner, const T* x, const T* g, const T* table, T* gx, T* gtable, Shape sh,
              Cfg cfg) {
  const int64_t P = F::width(cfg), C = sh.channels;
  if constexpr (Prepares<F>::value) F::prepare(table, C, cfg);
  std::vector<double> total(C * P, 0.0);  // (C, P)
  if (sh.lanes()) {
    const int64_t Cp = padded_channels<T>(C);
    const Buffer<T> tt = transposed(table, C, P, Cp);
    const int64_t rows = backward_rows(sh.outer), items = (sh.outer + rows - 1) / rows;
    const int64_t groups = std::min<int64_t>(items, GROUPS);
    std::vector<double> sums(groups * P * Cp, 0.0);  // per group (P, Cp)
    const int64_t tile = tile_channels<T>(P);
    runner.run(groups, worker_count(runner, groups), [&](int64_t gi) {
      Buffer<T> lane(P * Cp);  // (P, Cp)
      T* a = lane.data();
      double* s = sums.data() + gi * P * Cp;
      for (int64_t it = items * gi / groups; it < items * (gi + 1) / groups; ++it) {
        std::fill(a, a + P * Cp, T(0));
        const int64_t r0 = it * rows, r1 = std::min(sh.outer, r0 + rows);
        // a tile of channels down the item's rows, then the next tile: its parameter and
        // accumulator columns stay in cache (tile_channels)
        for (int64_t t0 = 0; t0 < C; t0 += tile) {
          const int64_t t1 = std::min(C, t0 + tile);
          if constexpr (F::by_vector) {  // blocks of W channels along a row ("lanes")
            for (int64_t r = r0; r < r1; ++r)
              for (int64_t c0 = t0; c0 < t1; c0 += W<T>) {
                const int64_t o = r * C + c0;
                bwd_block<F, T>(x + o, g + o, gx + o, std::min<int64_t>(W<T>, C - c0),
                                Par<T, Lay::lanes>{tt.data() + c0, Cp},
                                Acc<T>{a + c0, Cp, L<T>}, cfg);
              }
          } else {  // blocks of U rows of L channels ("rows")
            for (int64_t r = r0; r < r1; r += U)
              for (int64_t c0 = t0; c0 < t1; c0 += L<T>) {
                const int64_t o = r * C + c0;
                bwd_rows_block<F, T>(x + o, g + o, gx + o, C, std::min<int64_t>(U, r1 - r),
                                     std::min<int64_t>(L<T>, C - c0),
                                     Par<T, Lay::rows>{tt.data() + c0, Cp},
                                     Acc<T>{a + c0, Cp, 0}, cfg);
              }
          }
        }
        for (int64_t i = 0; i < P * Cp; ++i) s[i] += (double)a[i];
      }
    });
    for (int64_t gi = 0; gi < groups; ++gi)
      for (int64_t k = 0; k < P; ++k)
        for (int64_t c = 0; c < C; ++c) total[c * P + k] += sums[(gi * P + k) * Cp + c];
  } else {
    const int64_t per_run = (sh.inner + CHUNK - 1) / CHUNK, runs = sh.outer * C;
    const int64_t items = runs * per_run;
    std::vector<double> sums(items * P, 0.0);  // per item (one channel's run or part of it)
    runner.run(items, worker_count(runner, items), [&](int64_t it) {
      const int64_t run = it / per_run, c = run % C;
      const int64_t lo = (it % per_run) * CHUNK, hi = std::min(sh.inner, lo + CHUNK);
      const int64_t off = run * sh.inner;
      Buffer<T> lane(P * W<T>);
      Par<T, Lay::run> p{table + c * P, 0};
      Acc<T> acc{lane.data(), W<T>, L<T>};
      for (int64_t i = lo; i < hi; i += W<T>)
        bwd_block<F, T>(x + off + i, g + off + i, gx + off + i, std::min<int64_t>(W<T>, hi - i),
                        p, acc, cfg);
      double* s = sums.data() + it * P;
      for (int64_t k = 0; k < P; ++k) {
        double t = 0.0;
        for (int j = 0; j < W<T>; ++j) t += (double)lane[k * W<T> + j];
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

}  // namespace la
