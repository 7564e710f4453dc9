#include "server/shared_translation.h"

#include <utility>

namespace ts::server {

bool SharedTranslation::Attach(Waiter waiter) {
  std::lock_guard lock(mu_);
  if (ended_) return false;
  // A sink that missed the first tokens could not spell the sequence.
  if (streamed_) waiter.on_token = nullptr;
  waiters_.push_back(std::move(waiter));
  return true;
}

bool SharedTranslation::Abandoned() {
  std::vector<std::pair<Done, absl::Status>> detached;
  bool abandoned = false;
  {
    std::lock_guard lock(mu_);
    if (ended_) return waiters_.empty();
    std::erase_if(waiters_, [&](Waiter& waiter) {
      absl::Status status = waiter.poll();
      if (status.ok()) return false;
      detached.emplace_back(std::move(waiter.done), std::move(status));
      return true;
    });
    if (waiters_.empty()) ended_ = abandoned = true;
  }
  const core::TranslationResult none;
  for (auto& [done, status] : detached) done(status, none);
  return abandoned;
}

void SharedTranslation::Token(int token) {
  std::lock_guard lock(mu_);
  streamed_ = true;
  for (const Waiter& waiter : waiters_) {
    if (waiter.on_token) waiter.on_token(token);
  }
}

void SharedTranslation::Complete(const absl::Status& status,
                                 const core::TranslationResult& result) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mu_);
    ended_ = true;
    waiters.swap(waiters_);
  }
  for (Waiter& waiter : waiters) waiter.done(status, result);
}

int SharedTranslation::waiters() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(waiters_.size());
}

}  // namespace ts::server
