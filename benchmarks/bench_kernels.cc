// The family kernels alone (native/<family>.h through native/schedule.h), no framework around
// them: ns per element forward and backward on one thread, best of --reps runs, for each
// family's shared row and per channel (768 channels last). Built and run by bench_kernels.py
// with the flags the bindings use. Parameter rows are fixed synthetic values of each family's
// usual size (the kernels' cost does not depend on them, except through Fourier's range test:
// they keep every phase in range, as trained models do).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "families.h"

namespace {

struct Serial {  // one thread: the kernels' cost, not the pool's
  int64_t threads() const { return 1; }
  template <typename B>
  void run(int64_t items, int64_t, B&& body) const {
    for (int64_t i = 0; i < items; ++i) body(i);
  }
};

std::vector<float> row(int n, float scale) {  // alternating signs, growing magnitudes
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = scale * (1 + 0.3f * i) * ((i & 1) ? -1 : 1);
  return v;
}

template <class F>
void bench(const char* name, int64_t a, int64_t b, int64_t C, const std::vector<float>& base,
           int reps) {
  const int64_t N = 2 << 20, outer = C > 1 ? N / C : 1, inner = C > 1 ? 1 : N;
  std::mt19937 gen(0);
  std::normal_distribution<float> normal;
  // 64-byte aligned, as PyTorch's and XLA's CPU allocators align tensors
  la::Buffer<float> xb(N), gb(N), yb(N), gxb(N);
  float *x = xb.data(), *g = gb.data(), *y = yb.data(), *gx = gxb.data();
  for (int64_t i = 0; i < N; ++i) x[i] = normal(gen);
  for (int64_t i = 0; i < N; ++i) g[i] = normal(gen);
  const la::Cfg cfg{a, b, 1};
  const int64_t P = F::width(cfg);
  std::vector<float> table(C * P), gtable(C * P);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < P; ++k) table[c * P + k] = base[k] * (1 + 0.01f * (c % 7));
  const la::Shape sh{outer, C, inner};
  Serial r;
  double fwd = 1e30, bwd = 1e30;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    la::forward<F>(r, x, table.data(), y, sh, cfg);
    const auto t1 = std::chrono::steady_clock::now();
    la::backward<F>(r, x, g, table.data(), gx, gtable.data(), sh, cfg);
    const auto t2 = std::chrono::steady_clock::now();
    fwd = std::min(fwd, std::chrono::duration<double>(t1 - t0).count());
    bwd = std::min(bwd, std::chrono::duration<double>(t2 - t1).count());
  }
  std::printf("| %s | %s | %.2f | %.2f | %.2f |\n", name, C > 1 ? "768 last" : "shared",
              fwd / N * 1e9, bwd / N * 1e9, (fwd + bwd) / N * 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
  std::printf("| kernel | parameters | fwd ns/elem | bwd ns/elem | fwd+bwd |\n");
  std::printf("|---|---|---:|---:|---:|\n");
  const std::vector<float> selu = {1.05f, 1.67f, 1.f, 0.1f, 1.f, 1.f, 0.f};
  for (int64_t C : {int64_t(1), int64_t(768)}) {
    bench<la::Hermite>("hermite d8", 8, 0, C, row(9, 0.3f), reps);
    bench<la::Tropical>("tropical d4", 4, 0, C, row(12, 0.4f), reps);
    bench<la::Tropical>("tropical d8", 8, 0, C, row(20, 0.4f), reps);
    bench<la::TropicalRational>("tropical_rational d4", 4, 0, C, row(22, 0.4f), reps);
    bench<la::Rational>("rational (5, 4)", 5, 4, C, row(12, 0.2f), reps);
    bench<la::Fourier>("fourier d4", 4, 0, C, row(13, 0.5f), reps);
    bench<la::SELUVariation>("selu_variation", 0, 0, C, selu, reps);
  }
  return 0;
}
