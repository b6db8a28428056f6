// Entry points for white-box tests, not exported from the shared library:
// a pool built exactly as h2pool_create() builds it, but with a resolver of
// the test's choosing (to script slow, failing or silent name lookups).
#pragma once

#include <functional>
#include <memory>

#include "h2pool.h"
#include "loop.h"
#include "pool_observer.h"
#include "resolver.h"

namespace h2pool_core {

// Makes the pool's resolver; called once, on the creating thread, with the
// pool's loop (not yet running).
using ResolverFactory = std::function<std::unique_ptr<Resolver>(Loop &)>;

// As h2pool_create(), with the resolver from `make_resolver`, and (if not
// null) `observer` told of every connection's life; it must outlive the
// pool.
int create_pool_with_resolver(const h2pool_config *cfg,
                              const ResolverFactory &make_resolver,
                              h2pool **out, PoolObserver *observer = nullptr,
                              Loop::Mode mode = Loop::Mode::own_thread,
                              event_base *caller_base = nullptr);

} // namespace h2pool_core
