// DiTAC's fused CPU kernels (native/cpab.c, the same ones PyTorch calls) as XLA FFI handlers,
// for JAX and Keras on the JAX backend (learnact/xla_native/ditac.py builds it with jaxlib's
// FFI headers, registers the handlers and wraps them in custom VJPs).
//
// Why: JAX ran DiTAC as selects in XLA (the knot search as a count over every knot, the
// lookup as a gather from a small table, which XLA's CPU backend runs as scalar code), 8.8x
// GELU's fwd+bwd exact and 3.2x with the lookup table; the C kernels make each direction one
// pass over memory, window and gate fused.
//
// One packed table per call, a row per channel (one row for shared parameters), so that the
// calls partition over a device mesh like the family kernels (xla_native/_sharding.py):
//   exact:  [a2 (2N) | b2 (2N) | P (2(N + 1)) | stop (2N, small integers as floats)]
//           (the field and its mirror, the cumulative crossing times, the first cell each
//           knot's points cannot cross: ops/cpab/common.py _Tables, core/cpab.py _frames);
//           its gradient row: [dL/da2 | dL/db2 | dL/dtau2 | zeros].
//   lookup: [D (nb) | S (nb)] (x~ - x and dx~/dx per bin, nb = n + 2 with the outside bins);
//           its gradient row: [dL/dD | zeros].
// Work is cut in parts of a fixed size (by the shape, never by the thread count), each with
// its own double accumulators, added in part order: the gradients do not depend on the
// number of threads.

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>
#endif

#define restrict __restrict
extern "C" {  // C linkage: the loader reads la_abi() through ctypes
#include "cpab.c"  // the C kernels, compiled here as C++ (no OpenMP: XLA's pool runs the parts)
}
#undef restrict

#include "ffi_common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t PART = 1 << 16;  // elements per part of a backward (fixed: see above)
constexpr int64_t MAX_PARTS = 16;  // its accumulators are zeroed and summed per part

template <typename T>
struct Kern;
template <>
struct Kern<float> {
  static constexpr auto flow = la_flow_f32;
  static constexpr auto lut_fwd = la_lut_fwd_f32;
  static constexpr auto lut_bwd = la_lut_bwd_f32;
};
template <>
struct Kern<double> {
  static constexpr auto flow = la_flow_f64;
  static constexpr auto lut_fwd = la_lut_fwd_f64;
  static constexpr auto lut_bwd = la_lut_bwd_f64;
};

// parts of [0, numel): at least `min_part` elements each, at most MAX_PARTS, and no fewer
// elements per part than doubles in its accumulators (zeroing and adding them must not cost
// more than the part)
int64_t part_size(int64_t numel, int64_t acc, int64_t min_part) {
  int64_t per = std::max<int64_t>({min_part, acc, (numel + MAX_PARTS - 1) / MAX_PARTS});
  return (per + 63) / 64 * 64;
}

struct Layout {
  int64_t channels, inner, n;
};

// the packed exact-mode rows unpacked into the kernel's arrays (a few numbers per channel)
template <typename T>
struct FlowTables {
  std::vector<T> A, B, P;
  std::vector<int32_t> stop;
  FlowTables(const T* tab, int64_t C, int64_t n) {
    const int64_t w = 8 * n + 2;
    for (int64_t c = 0; c < C; ++c) {
      const T* r = tab + c * w;
      A.insert(A.end(), r, r + 2 * n);
      B.insert(B.end(), r + 2 * n, r + 4 * n);
      P.insert(P.end(), r + 4 * n, r + 6 * n + 2);
      for (int64_t j = 0; j < 2 * n; ++j) stop.push_back((int32_t)r[6 * n + 2 + j]);
    }
  }
};

template <typename T>
void flow_run(ffi::ThreadPool& pool, const T* x, const T* g, T* out, T* gtab, const T* tab,
              int64_t numel, const Layout& L, double lo, double hi, int64_t gate,
              double alpha) {
  const int64_t C = L.channels, n = L.n;
  FlowTables<T> tb(tab, C, n);
  auto call = [&](int64_t s, int64_t e, double* hist) {
    Kern<T>::flow(x, g, out, hist, s, e, tb.A.data(), tb.B.data(), tb.P.data(),
                  tb.stop.data(), C, L.inner, (int32_t)n, (T)1.0, (T)lo, (T)hi,
                  (int32_t)gate, (T)alpha);
  };
  if (!g) {  // forward: any cut
    const int64_t step = part_size(numel, 0, 4096), parts = (numel + step - 1) / step;
    la::parallel(pool, parts, pool.num_threads(), [&](int64_t p) {
      call(p * step, std::min(numel, (p + 1) * step), nullptr);
    });
    return;
  }
  const int64_t size = C * 2 * n * 2 + C * 2 * (n + 1);  // [(a, b) pairs | D] of one copy
  const int64_t stride = la_flow_stride(C, (int32_t)n);
  const int64_t step = part_size(numel, stride, PART), parts = (numel + step - 1) / step;
  std::vector<double> hist(parts * stride, 0.0);
  la::parallel(pool, parts, pool.num_threads(), [&](int64_t p) {
    call(p * step, std::min(numel, (p + 1) * step), hist.data() + p * stride);
  });
  std::vector<double> tot(size, 0.0);
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t k = 0; k < LA_COPIES; ++k) {
      const double* h = hist.data() + p * stride + k * size;
      for (int64_t i = 0; i < size; ++i) tot[i] += h[i];
    }
  const int64_t w = 8 * n + 2;
  const double* D = tot.data() + C * 2 * n * 2;
  for (int64_t c = 0; c < C; ++c) {
    T* r = gtab + c * w;
    std::fill(r, r + w, T(0));
    for (int64_t j = 0; j < 2 * n; ++j) {
      r[j] = (T)tot[2 * (c * 2 * n + j)];              // dL/da2
      r[2 * n + j] = (T)tot[2 * (c * 2 * n + j) + 1];  // dL/db2
    }
    for (int64_t f = 0; f < 2; ++f) {  // dL/dtau_j: the per-knot differences, summed up
      double run = 0.0;
      const double* d = D + (c * 2 + f) * (n + 1);
      for (int64_t j = 0; j < n; ++j) {
        run += d[j];
        r[4 * n + f * n + j] = (T)run;
      }
    }
  }
}

template <typename T>
void lut_run(ffi::ThreadPool& pool, const T* x, const T* g, T* out, T* gtab, const T* tab,
             int64_t numel, const Layout& L, double k, double off, int64_t gate,
             double alpha) {
  const int64_t C = L.channels, nb = L.n;
  std::vector<T> D(C * nb), S(C * nb);
  for (int64_t c = 0; c < C; ++c) {
    std::copy(tab + c * 2 * nb, tab + c * 2 * nb + nb, D.begin() + c * nb);
    std::copy(tab + c * 2 * nb + nb, tab + (c + 1) * 2 * nb, S.begin() + c * nb);
  }
  if (!g) {
    const int64_t step = part_size(numel, 0, 4096), parts = (numel + step - 1) / step;
    la::parallel(pool, parts, pool.num_threads(), [&](int64_t p) {
      Kern<T>::lut_fwd(x, out, p * step, std::min(numel, (p + 1) * step), D.data(), nb, C,
                       L.inner, (T)k, (T)off, (int32_t)gate, (T)alpha);
    });
    return;
  }
  const int64_t stride = la_lut_stride(C * nb);
  const int64_t step = part_size(numel, stride, PART), parts = (numel + step - 1) / step;
  std::vector<double> hist(parts * stride, 0.0);
  la::parallel(pool, parts, pool.num_threads(), [&](int64_t p) {
    Kern<T>::lut_bwd(x, g, out, hist.data() + p * stride, p * step,
                     std::min(numel, (p + 1) * step), D.data(), S.data(), nb, C, L.inner, (T)k,
                     (T)off, (int32_t)gate, (T)alpha);
  });
  for (int64_t c = 0; c < C; ++c) {
    T* r = gtab + c * 2 * nb;
    for (int64_t j = 0; j < nb; ++j) {
      double t = 0.0;
      for (int64_t p = 0; p < parts; ++p) t += hist[p * stride + c * nb + j];
      r[j] = (T)t;
      r[nb + j] = T(0);
    }
  }
}

template <ffi::DataType DT>
using Buf = ffi::Buffer<DT>;

// One handler's work, either direction (g, gtab: null forward): check the layout, run the
// exact flow or the lookup table. Attributes: outer, channels, inner, n (cells; lookup: bins
// nb), then the window or the binning (exact: lo, hi; lookup: k, off), the gate and its alpha.
template <ffi::DataType DT, bool LUT>
ffi::Error run(ffi::ThreadPool& pool, const Buf<DT>& x, const ffi::NativeType<DT>* g,
               const Buf<DT>& tab, ffi::NativeType<DT>* out, ffi::NativeType<DT>* gtab,
               int64_t outer, int64_t channels, int64_t inner, int64_t n, double p0,
               double p1, int64_t gate, double alpha) {
  const int64_t numel = (int64_t)x.element_count();
  if (auto err = la::check_layout(numel, (int64_t)tab.element_count(), outer, channels, inner,
                                  LUT ? 2 * n : 8 * n + 2);
      err.failure())
    return err;
  const Layout L{channels, inner, n};
  if (LUT)
    lut_run(pool, x.typed_data(), g, out, gtab, tab.typed_data(), numel, L, p0, p1, gate, alpha);
  else
    flow_run(pool, x.typed_data(), g, out, gtab, tab.typed_data(), numel, L, p0, p1, gate,
             alpha);
  return ffi::Error::Success();
}

template <ffi::DataType DT, bool LUT>
ffi::Error Forward(ffi::ThreadPool pool, Buf<DT> x, Buf<DT> tab, ffi::ResultBuffer<DT> y,
                   int64_t outer, int64_t channels, int64_t inner, int64_t n, double p0,
                   double p1, int64_t gate, double alpha) {
  return run<DT, LUT>(pool, x, nullptr, tab, y->typed_data(), nullptr, outer, channels, inner,
                      n, p0, p1, gate, alpha);
}

template <ffi::DataType DT, bool LUT>
ffi::Error Backward(ffi::ThreadPool pool, Buf<DT> x, Buf<DT> g, Buf<DT> tab,
                    ffi::ResultBuffer<DT> gx, ffi::ResultBuffer<DT> gtab, int64_t outer,
                    int64_t channels, int64_t inner, int64_t n, double p0, double p1,
                    int64_t gate, double alpha) {
  return run<DT, LUT>(pool, x, g.typed_data(), tab, gx->typed_data(), gtab->typed_data(), outer,
                      channels, inner, n, p0, p1, gate, alpha);
}

constexpr auto attributes = [](auto binding) {
  return std::move(binding)
      .template Attr<int64_t>("outer")
      .template Attr<int64_t>("channels")
      .template Attr<int64_t>("inner")
      .template Attr<int64_t>("n")
      .template Attr<double>("p0")
      .template Attr<double>("p1")
      .template Attr<int64_t>("gate")
      .template Attr<double>("alpha");
};

}  // namespace

// la_ditac_{flow,lut}_{fwd,bwd}_{f32,f64}
#define LA_DITAC(mode, LUT)                                                                  \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_ditac_##mode##_fwd_f32, (Forward<ffi::F32, LUT>),          \
                                la::forward_binding<ffi::F32>(attributes));                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_ditac_##mode##_fwd_f64, (Forward<ffi::F64, LUT>),          \
                                la::forward_binding<ffi::F64>(attributes));                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_ditac_##mode##_bwd_f32, (Backward<ffi::F32, LUT>),         \
                                la::backward_binding<ffi::F32>(attributes));                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_ditac_##mode##_bwd_f64, (Backward<ffi::F64, LUT>),         \
                                la::backward_binding<ffi::F64>(attributes));

LA_DITAC(flow, false)
LA_DITAC(lut, true)
