// Progress of a long run over --input: a bar redrawn in place when stderr is
// a terminal; one summary line at the end otherwise (logs and CI get a
// record, not a stream of carriage returns).
#ifndef TRANSFORMER_SERVING_CLIENT_PROGRESS_H_
#define TRANSFORMER_SERVING_CLIENT_PROGRESS_H_

#include <cstddef>
#include <ostream>
#include <string>

#include "absl/time/time.h"

namespace ts::client {

class Progress {
 public:
  enum class Mode { kOff, kBar, kSummary };

  // kBar if `fd` is a terminal, else kSummary; kOff if not `enabled`.
  static Mode ModeFor(bool enabled, int fd);

  // `verb` names the work in the output ("translated"); `total` texts.
  Progress(Mode mode, std::string verb, size_t total, std::ostream* err);

  // `n` more texts are done. Called by one thread.
  void Advance(size_t n);
  // Ends the bar's line, or writes the summary line.
  void Finish();

 private:
  void DrawBar();

  const Mode mode_;
  const std::string verb_;
  const size_t total_;
  std::ostream* const err_;
  const absl::Time start_;
  size_t done_ = 0;
  absl::Time last_draw_ = absl::InfinitePast();
};

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_PROGRESS_H_
