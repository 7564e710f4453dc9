#include "client/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace ts::client {
namespace {

constexpr int kBarWidth = 30;
// A terminal redrawn more often only costs CPU; 10 Hz looks continuous.
constexpr absl::Duration kRedrawInterval = absl::Milliseconds(100);

}  // namespace

Progress::Mode Progress::ModeFor(bool enabled, int fd) {
  if (!enabled) return Mode::kOff;
  return isatty(fd) ? Mode::kBar : Mode::kSummary;
}

Progress::Progress(Mode mode, std::string verb, size_t total, std::ostream* err)
    : mode_(mode),
      verb_(std::move(verb)),
      total_(total),
      err_(err),
      start_(absl::Now()) {}

void Progress::Advance(size_t n) {
  done_ += n;
  if (mode_ != Mode::kBar) return;
  const absl::Time now = absl::Now();
  if (now - last_draw_ < kRedrawInterval && done_ < total_) return;
  last_draw_ = now;
  DrawBar();
}

void Progress::DrawBar() {
  const double fraction =
      total_ == 0 ? 1.0 : static_cast<double>(done_) / total_;
  const int filled = static_cast<int>(fraction * kBarWidth);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  *err_ << absl::StrFormat("\r[%s%s] %d/%d %3.0f%% %.1f texts/s",
                           std::string(filled, '#'),
                           std::string(kBarWidth - filled, ' '), done_, total_,
                           100 * fraction, seconds > 0 ? done_ / seconds : 0.0)
        << std::flush;
}

void Progress::Finish() {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  switch (mode_) {
    case Mode::kOff:
      return;
    case Mode::kBar:
      DrawBar();
      *err_ << std::endl;
      return;
    case Mode::kSummary:
      *err_ << absl::StrFormat(
                   "transformer-client: %s %d of %d texts in %.1f s (%.1f "
                   "texts/s)",
                   verb_, done_, total_, seconds,
                   seconds > 0 ? done_ / seconds : 0.0)
            << std::endl;
      return;
  }
}

}  // namespace ts::client
