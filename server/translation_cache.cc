#include "server/translation_cache.h"

#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ts::server {
namespace {

// Map and list nodes, the Entry and its vectors' headers (bytes); an
// allowance, so the bound holds for many small entries too.
constexpr int64_t kEntryOverheadBytes = 160;

// A float's exact bits: printing it with 6 digits would merge nearby values.
absl::Hex FloatBits(float value) {
  return absl::Hex(std::bit_cast<uint32_t>(value));
}
absl::Hex DoubleBits(double value) {
  return absl::Hex(std::bit_cast<uint64_t>(value));
}

}  // namespace

std::string TranslationCacheKey(absl::string_view model_identity,
                                const core::TranslationOptions& options,
                                int text_index, absl::string_view text) {
  // Lengths prefix the free-form parts, so no two keys collide.
  std::string key = absl::StrCat(
      model_identity.size(), ":", model_identity, "|beam=", options.beam_size,
      "|lp=", FloatBits(options.length_penalty), "|max=", options.max_length,
      "|min=", options.min_length, "|n=", options.num_hypotheses,
      "|ngram=", options.no_repeat_ngram_size,
      "|rp=", FloatBits(options.repetition_penalty),
      "|lf=", DoubleBits(options.max_length_factor));
  if (options.do_sample) {
    absl::StrAppend(&key, "|sample|k=", options.top_k,
                    "|p=", FloatBits(options.top_p),
                    "|t=", FloatBits(options.temperature),
                    "|seed=", options.seed, "|index=", text_index);
  }
  absl::StrAppend(&key, "|", text.size(), ":", text);
  return key;
}

TranslationCache::TranslationCache(int64_t max_bytes,
                                   std::function<void(int64_t)> bytes_listener)
    : max_bytes_(max_bytes), bytes_listener_(std::move(bytes_listener)) {}

int64_t TranslationCache::EntryBytes(const std::string& key,
                                     const core::TranslationResult& result) {
  int64_t bytes = kEntryOverheadBytes + 2 * static_cast<int64_t>(key.size());
  for (const core::Hypothesis& hypothesis : result.hypotheses) {
    bytes += static_cast<int64_t>(sizeof(core::Hypothesis)) +
             static_cast<int64_t>(hypothesis.ids.size() * sizeof(int));
  }
  return bytes;
}

TranslationCache::Lookup TranslationCache::Find(
    const std::string& key, SharedTranslation::Waiter waiter,
    core::TranslationResult* result,
    std::shared_ptr<SharedTranslation>* computation) {
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    *result = it->second->result;
    return Lookup::kHit;
  }
  std::shared_ptr<SharedTranslation>& in_flight = in_flight_[key];
  // Attach under the cache's lock: Finish unregisters under it too, so a
  // waiter that attached here is one that Complete will answer.
  if (in_flight != nullptr && in_flight->Attach(waiter)) {
    return Lookup::kPending;
  }
  in_flight = std::make_shared<SharedTranslation>();
  in_flight->Attach(std::move(waiter));
  *computation = in_flight;
  return Lookup::kCompute;
}

void TranslationCache::Finish(const std::string& key,
                              const SharedTranslation* computation,
                              const absl::Status& status,
                              const core::TranslationResult& result) {
  std::lock_guard lock(mu_);
  if (auto it = in_flight_.find(key);
      it != in_flight_.end() && it->second.get() == computation) {
    in_flight_.erase(it);
  }
  const int64_t entry_bytes = EntryBytes(key, result);
  if (status.ok() && entry_bytes <= max_bytes_ && !index_.contains(key)) {
    int64_t bytes = bytes_ + entry_bytes;
    while (bytes > max_bytes_ && !lru_.empty()) {
      bytes -= lru_.back().bytes;
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{key, result, entry_bytes});
    index_.emplace(key, lru_.begin());
    SetBytesLocked(bytes);
  }
}

void TranslationCache::SetBytesLocked(int64_t bytes) {
  bytes_ = bytes;
  if (bytes_listener_) bytes_listener_(bytes_);
}

int64_t TranslationCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

int64_t TranslationCache::entries() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(lru_.size());
}

}  // namespace ts::server
