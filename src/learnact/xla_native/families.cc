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
#include "parallel.h"
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
  if (auto err = check(x, table, sh, F::width(cfg)); err.failure()) return err;
  Runner r{pool};
  la::backward<F>(r, x.typed_data(), g.typed_data(), table.typed_data(), gx->typed_data(),
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

extern "C" int la_abi() { return LA_ABI; }

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

LA_FAMILIES(LA_FAMILY)
