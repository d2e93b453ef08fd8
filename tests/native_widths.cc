// Every family kernel on a few fixed inputs, written to files: built by
// tests/test_native_widths.py once per vector width (-DLA_VBYTES=16, 32 and the machine's),
// whose outputs must agree. The machine's width runs its SIMD-specific paths (AVX-512 masks,
// compress and expand); the narrower builds run the portable ones (lane loops) that
// machines without AVX-512 use.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "families.h"

namespace {

struct Serial {
  int64_t threads() const { return 1; }
  template <typename B>
  void run(int64_t items, int64_t, B&& body) const {
    for (int64_t i = 0; i < items; ++i) body(i);
  }
};

void save(const std::string& path, const std::vector<float>& v) {
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(v.data(), sizeof(float), v.size(), f);
  std::fclose(f);
}

// the family's row: small alternating values (SELU variation: its own, with omega and
// beta as trained models have them)
std::vector<float> row(const char* name, int64_t P) {
  std::vector<float> v(P);
  for (int64_t i = 0; i < P; ++i) v[i] = 0.3f * (1 + 0.25f * i) * ((i & 1) ? -1 : 1);
  if (std::string(name) == "selu_variation") v = {1.05f, 1.67f, 0.9f, 0.1f, 1.3f, 1.1f, 0.2f};
  if (std::string(name) == "hermite") v[P - 2] = -1.5f, v[P - 1] = 1.5f;  // tails' bounds
  return v;
}

// (outer, channels, inner): one shared run with a ragged end; channels last (per channel,
// ragged rows and columns); a middle channel axis (runs of one channel)
const int64_t SHAPES[][3] = {{1, 1, 4099}, {53, 37, 1}, {3, 5, 301}};

template <class F>
void one(const char* name, int64_t a, int64_t b, const std::string& dir) {
  const la::Cfg cfg{a, b, 1};
  const int64_t P = F::width(cfg);
  for (int s = 0; s < 3; ++s) {
    const la::Shape sh{SHAPES[s][0], SHAPES[s][1], SHAPES[s][2]};
    const int64_t n = sh.outer * sh.channels * sh.inner, C = sh.channels;
    std::vector<float> x(n), g(n), y(n), gx(n), table(C * P), gt(C * P);
    for (int64_t i = 0; i < n; ++i) {  // both signs, zeros, large values
      x[i] = 3.0f * std::sin(0.37f * i + 0.1f * s);
      g[i] = std::cos(0.11f * i);
    }
    x[5] = 0.0f, x[17] = 0.0f, x[40] = 25.0f, x[41] = -30.0f;
    const std::vector<float> r = row(name, P);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < P; ++k) table[c * P + k] = r[k] * (1 + 0.01f * (c % 7));
    Serial run;
    la::forward<F>(run, x.data(), table.data(), y.data(), sh, cfg);
    la::backward<F>(run, x.data(), g.data(), table.data(), gx.data(), gt.data(), sh, cfg);
    const std::string base = dir + "/" + name + "_" + std::to_string(s) + "_";
    save(base + "y", y);
    save(base + "gx", gx);
    save(base + "gt", gt);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
#define LA_WIDTHS_ONE(name, F) one<F>(#name, name##_a, name##_b, dir);
  // the family integers (degree; tails / denominator degree)
  const int64_t hermite_a = 6, hermite_b = 1, tropical_a = 4, tropical_b = 0,
                tropical_rational_a = 3, tropical_rational_b = 0, rational_a = 5,
                rational_b = 4, fourier_a = 3, fourier_b = 0, selu_variation_a = 0,
                selu_variation_b = 0;
  LA_FAMILIES(LA_WIDTHS_ONE)
  std::printf("%d\n", LA_VBYTES);
  return 0;
}
