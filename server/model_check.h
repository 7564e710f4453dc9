// `transformer-server --check`: loads a model folder, prints what it is and
// what memory it needs, translates one sentence, and says whether it works.
#ifndef TRANSFORMER_SERVING_SERVER_MODEL_CHECK_H_
#define TRANSFORMER_SERVING_SERVER_MODEL_CHECK_H_

#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "core/model/marian_model.h"

namespace ts::server {

// The memory lines the server also logs at start: weights per compute type
// (core::WeightBytes), the bytes the loaded weights hold, KV-cache bytes per
// decoded token and cross-attention bytes per source token (one row each).
std::string MemorySummary(const core::MarianModel& model,
                          const std::string& compute_type);

// Prints the architecture, MemorySummary and the greedy translation of
// `sentence` (at most 64 tokens) to `out`. Errors: the load error naming
// `model_dir` (NotFound, InvalidArgument, DataLoss as MarianModel::Load), or
// the tokenizer's or translator's error, or Internal if the translation is
// empty.
absl::Status CheckModel(const std::string& model_dir,
                        const std::string& compute_type,
                        const std::string& sentence, std::ostream& out);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_MODEL_CHECK_H_
