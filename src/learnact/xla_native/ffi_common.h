// What learnact's XLA FFI bindings (families.cc, and cpab.cc for DiTAC) share: the work items
// on XLA's intra-op pool, the layout check, and the handlers' argument lists.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "xla/ffi/api/ffi.h"

namespace la {

// Runs body(item) for item in [0, items) on up to `workers` threads: the caller and tasks on
// XLA's pool. The caller works too and waits only for the items (not for the tasks to start:
// XLA may run this call on a pool thread while the other threads are busy, even with another
// such call), so it cannot deadlock; a task that starts late finds no item and touches only
// the shared counters, which it keeps alive.
template <typename F>
void parallel(xla::ffi::ThreadPool& pool, int64_t items, int64_t workers, F&& body) {
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


// (outer, channels, inner) must tile x, and the table hold `width` numbers per channel
inline xla::ffi::Error check_layout(int64_t numel, int64_t table, int64_t outer,
                                    int64_t channels, int64_t inner, int64_t width) {
  if (outer < 0 || channels < 1 || inner < 0 || outer * channels * inner != numel)
    return xla::ffi::Error::InvalidArgument("learnact: (outer, channels, inner) does not match x");
  if (table != channels * width)
    return xla::ffi::Error::InvalidArgument("learnact: parameter table is not (channels, width)");
  return xla::ffi::Error::Success();
}

// the handlers' bindings: x, table -> y and x, g, table -> dx, dtable, then the attributes
// that `attrs` (a callable on the binding) adds
template <xla::ffi::DataType DT, class Attrs>
auto forward_binding(Attrs attrs) {
  using Buf = xla::ffi::Buffer<DT>;
  return attrs(xla::ffi::Ffi::Bind()
                   .Ctx<xla::ffi::ThreadPool>()
                   .template Arg<Buf>()
                   .template Arg<Buf>()
                   .template Ret<Buf>());
}

template <xla::ffi::DataType DT, class Attrs>
auto backward_binding(Attrs attrs) {
  using Buf = xla::ffi::Buffer<DT>;
  return attrs(xla::ffi::Ffi::Bind()
                   .Ctx<xla::ffi::ThreadPool>()
                   .template Arg<Buf>()
                   .template Arg<Buf>()
                   .template Arg<Buf>()
                   .template Ret<Buf>()
                   .template Ret<Buf>());
}

}  // namespace la
