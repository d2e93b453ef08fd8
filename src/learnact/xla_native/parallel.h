// learnact's XLA FFI handlers run their work items on XLA's intra-op pool through this
// helper (families.cc, cpab.c's bindings in cpab.cc).
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

}  // namespace la
