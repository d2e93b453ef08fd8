// The family kernels' C entry points, for PyTorch (learnact/ops/_families.py calls them
// through ctypes on data pointers, from each family op's CPU kernel). No PyTorch or Python
// headers: one build per machine, independent of the installed torch.
//
//   la_<family>_fwd_<f32|f64>(x, table, y, outer, channels, inner, a, b, threads)
//   la_<family>_bwd_<f32|f64>(x, g, table, gx, gtable, outer, channels, inner, a, b, threads)
//
// x, g, y, gx: contiguous (outer, channels, inner); table, gtable: (channels, P) with P the
// family's row (native/schedule.h). Threads: built with -fopenmp (where torch runs GNU
// OpenMP), the work items run on that same OpenMP pool, `threads` of them (the caller passes
// torch.get_num_threads()); otherwise on std::threads. Results do not depend on `threads`.
#include <thread>
#include <vector>

#include "families.h"

namespace {

struct Runner {
  int64_t n;
  int64_t threads() const { return n; }

  template <typename Body>
  void run(int64_t items, int64_t workers, Body&& body) const {
    if (workers <= 1 || items <= 1) {
      for (int64_t i = 0; i < items; ++i) body(i);
      return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads((int)workers)
    for (int64_t i = 0; i < items; ++i) body(i);
#else
    // contiguous blocks of items per thread; the caller runs the first
    std::vector<std::thread> pool;
    auto block = [&](int64_t w) {
      for (int64_t i = items * w / workers; i < items * (w + 1) / workers; ++i) body(i);
    };
    for (int64_t w = 1; w < workers; ++w) pool.emplace_back(block, w);
    block(0);
    for (auto& t : pool) t.join();
#endif
  }
};

}  // namespace

extern "C" int la_abi(void) { return LA_ABI; }

extern "C" int la_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

#define LA_C_ENTRY(name, F, T, suf)                                                          \
  extern "C" void la_##name##_fwd_##suf(const T* x, const T* table, T* y, int64_t outer,     \
                                        int64_t channels, int64_t inner, int64_t a,          \
                                        int64_t b, int32_t threads) {                        \
    Runner r{threads};                                                                       \
    la::forward<F>(r, x, table, y, la::Shape{outer, channels, inner}, la::Cfg{a, b, 1});     \
  }                                                                                          \
  extern "C" void la_##name##_bwd_##suf(const T* x, const T* g, const T* table, T* gx,       \
                                        T* gtable, int64_t outer, int64_t channels,          \
                                        int64_t inner, int64_t a, int64_t b,                 \
                                        int32_t threads) {                                   \
    Runner r{threads};                                                                       \
    la::backward<F>(r, x, g, table, gx, gtable, la::Shape{outer, channels, inner},           \
                    la::Cfg{a, b, 1});                                                       \
  }

#define LA_C_FAMILY(name, F) LA_C_ENTRY(name, F, float, f32) LA_C_ENTRY(name, F, double, f64)

LA_FAMILIES(LA_C_FAMILY)
