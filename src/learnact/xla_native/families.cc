// The family kernels' XLA FFI binding, for JAX (learnact/xla_native/__init__.py builds it
// with jaxlib's FFI headers, registers the handlers and wraps them in custom VJPs).
//
// Why: XLA's CPU backend fuses an activation's forward well, but its backward needs one
// reduction per parameter (sum_i g_i df/dp_k(x_i)), and XLA runs those as separate passes over
// the tensor (Hermite degree 8: nine, ~4x GELU's fwd+bwd). The kernels (native/<family>.h,
// run by native/schedule.h, shared with PyTorch's native/families.cc) make the backward one
// pass that writes dL/dx and every parameter's partial sums, here on XLA's intra-op threads.
// JAX's own derivative conventions are kept where they matter: d|A|/dA = 1 at A = 0.

#include <utility>

#include "families.h"
#include "ffi_common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using la::Cfg;
using la::Shape;

// the schedules' Runner over XLA's pool
struct Runner {
  ffi::ThreadPool& pool;
  int64_t threads() const { return pool.num_threads(); }
  template <typename Body>
  void run(int64_t items, int64_t workers, Body&& body) const {
    la::parallel(pool, items, workers, body);
  }
};

template <class F, ffi::DataType DT>
ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<DT> x, ffi::Buffer<DT> table,
                   ffi::ResultBuffer<DT> y, int64_t outer, int64_t channels, int64_t inner,
                   int64_t a, int64_t b) {
  Shape sh{outer, channels, inner};
  Cfg cfg{a, b};
  if (auto err = la::check_layout((int64_t)x.element_count(), (int64_t)table.element_count(),
                                  outer, channels, inner, F::width(cfg));
      err.failure())
    return err;
  Runner r{pool};
  la::forward<F>(r, x.typed_data(), table.typed_data(), y->typed_data(), sh, cfg);
  return ffi::Error::Success();
}

template <class F, ffi::DataType DT>
ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<DT> x, ffi::Buffer<DT> g,
                    ffi::Buffer<DT> table, ffi::ResultBuffer<DT> gx, ffi::ResultBuffer<DT> gt,
                    int64_t outer, int64_t channels, int64_t inner, int64_t a, int64_t b) {
  Shape sh{outer, channels, inner};
  Cfg cfg{a, b};
  if (auto err = la::check_layout((int64_t)x.element_count(), (int64_t)table.element_count(),
                                  outer, channels, inner, F::width(cfg));
      err.failure())
    return err;
  Runner r{pool};
  la::backward<F>(r, x.typed_data(), g.typed_data(), table.typed_data(), gx->typed_data(),
              gt->typed_data(), sh, cfg);
  return ffi::Error::Success();
}

// the layout and family integers every handler takes as attributes
constexpr auto attributes = [](auto binding) {
  return std::move(binding)
      .template Attr<int64_t>("outer")
      .template Attr<int64_t>("channels")
      .template Attr<int64_t>("inner")
      .template Attr<int64_t>("a")
      .template Attr<int64_t>("b");
};

}  // namespace

extern "C" int la_abi() { return LA_ABI; }

// la_<family>_{fwd,bwd}_{f32,f64}
#define LA_FAMILY(name, F)                                                                  \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_fwd_f32, (Forward<F, ffi::F32>),                 \
                                la::forward_binding<ffi::F32>(attributes));                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_fwd_f64, (Forward<F, ffi::F64>),                 \
                                la::forward_binding<ffi::F64>(attributes));                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_bwd_f32, (Backward<F, ffi::F32>),                \
                                la::backward_binding<ffi::F32>(attributes));                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(la_##name##_bwd_f64, (Backward<F, ffi::F64>),                \
                                la::backward_binding<ffi::F64>(attributes));

LA_FAMILIES(LA_FAMILY)
