// One sentence's translation, computed once for every caller that wants it.
// The computation belongs to none of its callers: it lives while any of them
// still waits, each caller that cancels or passes its deadline only detaches
// (and gets its own status), and the others get the result.
#ifndef TRANSFORMER_SERVING_SERVER_SHARED_TRANSLATION_H_
#define TRANSFORMER_SERVING_SERVER_SHARED_TRANSLATION_H_

#include <functional>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "core/decoding/options.h"

namespace ts::server {

// Thread-safe. Lock order: the scheduler's lock (Abandoned is polled under
// it), then this object's, then a waiter's own (its poll runs under ours).
class SharedTranslation {
 public:
  // Runs once per waiter: with the computation's outcome, or with the
  // waiter's own status when it detached (then `result` is empty).
  using Done = std::function<void(const absl::Status& status,
                                  const core::TranslationResult& result)>;
  // OK while the waiter still wants the result; otherwise the status it is
  // answered with as it detaches (CANCELLED, DEADLINE_EXCEEDED, or any error
  // if its call was answered already). Must be quick: it may run under the
  // scheduler's lock.
  using Poll = std::function<absl::Status()>;
  // The token just chosen (greedy search or one sample), as
  // core::TokenCallback for this sentence.
  using TokenSink = std::function<void(int token)>;

  struct Waiter {
    Poll poll;
    Done done;
    // Optional. Kept only if the waiter attaches before the first token, so
    // a sink always sees the whole sequence.
    TokenSink on_token;
  };

  SharedTranslation() = default;
  SharedTranslation(const SharedTranslation&) = delete;
  SharedTranslation& operator=(const SharedTranslation&) = delete;

  // Adds a waiter. False (and `waiter` dropped) once the computation has
  // completed or was abandoned: the caller must look the sentence up again.
  bool Attach(Waiter waiter);

  // Polls every waiter; those that no longer want the result are detached
  // and answered with their own status. Returns true once no waiter is left:
  // the computation is abandoned (Attach refuses from then on) and the
  // scheduler may drop it. Waiters' `done` may run on this thread, under the
  // caller's locks: they must not call back into the scheduler.
  bool Abandoned();

  // Forwards a streamed token to the waiters that take tokens.
  void Token(int token);

  // Answers every attached waiter with `status` and `result`; later calls do
  // nothing.
  void Complete(const absl::Status& status,
                const core::TranslationResult& result);

  // Waiters attached now (for tests and metrics).
  int waiters() const;

 private:
  mutable std::mutex mu_;
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;     // completed or abandoned
  bool streamed_ ABSL_GUARDED_BY(mu_) = false;  // a token was forwarded
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_SHARED_TRANSLATION_H_
