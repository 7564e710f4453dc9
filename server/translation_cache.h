// Whole-text translation results, least recently used first out, bounded in
// bytes; identical computations in flight are shared (coalesced).
#ifndef TRANSFORMER_SERVING_SERVER_TRANSLATION_CACHE_H_
#define TRANSFORMER_SERVING_SERVER_TRANSLATION_CACHE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/decoding/options.h"
#include "server/shared_translation.h"

namespace ts::server {

// The cache key of one text: the model's identity (folder and compute type,
// as the server names them), every resolved option that changes the result,
// and the text. With do_sample the seed and the text's index in its request
// are part of it (they name the random streams); without, neither is.
std::string TranslationCacheKey(absl::string_view model_identity,
                                const core::TranslationOptions& options,
                                int text_index, absl::string_view text);

// Thread-safe. A text's result is found (hit), or the caller joins an
// identical computation in flight (coalesced: counted as a hit), or a new
// computation is registered for it (miss) which the caller must run and end
// with Finish. Computations in flight are SharedTranslations: each caller is
// one of its waiters, and a caller that cancels or expires only detaches.
// Stored results are exactly what the engine returned (ids and scores), so a
// hit answers as the engine would. The size of an entry is EntryBytes;
// entries are evicted, least recently used first, to keep the total <=
// max_bytes.
class TranslationCache {
 public:
  enum class Lookup {
    kHit,      // *result holds the stored result; the waiter was dropped
    kPending,  // the waiter joined the computation in flight
    kCompute,  // *computation is new, with the waiter attached: run it, then
               // call Finish(key, computation, ...) and Complete it
  };

  // max_bytes > 0. `bytes_listener`, if set, is told the stored bytes after
  // each change (for a gauge); called with the lock held, so it must not
  // call back into the cache.
  explicit TranslationCache(int64_t max_bytes,
                            std::function<void(int64_t)> bytes_listener = {});

  TranslationCache(const TranslationCache&) = delete;
  TranslationCache& operator=(const TranslationCache&) = delete;

  // See Lookup. A computation in flight that was abandoned (every waiter
  // left) or has ended is replaced by a new one (kCompute).
  Lookup Find(const std::string& key, SharedTranslation::Waiter waiter,
              core::TranslationResult* result,
              std::shared_ptr<SharedTranslation>* computation);

  // Ends `computation` (the one Find handed out for `key` with kCompute):
  // stores `result` if `status` is OK (unless it alone exceeds max_bytes) and
  // unregisters the computation, so later lookups hit or compute anew. Does
  // not answer its waiters: the caller Completes it next.
  void Finish(const std::string& key, const SharedTranslation* computation,
              const absl::Status& status,
              const core::TranslationResult& result);

  // Bytes one entry is charged: the key (stored twice: index and entry),
  // the token ids and a fixed allowance for the containers' nodes.
  static int64_t EntryBytes(const std::string& key,
                            const core::TranslationResult& result);

  int64_t bytes() const;
  int64_t entries() const;
  int64_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry {
    std::string key;
    core::TranslationResult result;
    int64_t bytes = 0;
  };

  void SetBytesLocked(int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t max_bytes_;
  const std::function<void(int64_t)> bytes_listener_;

  mutable std::mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_
      ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::shared_ptr<SharedTranslation>> in_flight_
      ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_TRANSLATION_CACHE_H_
