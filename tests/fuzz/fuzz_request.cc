// Fuzzes what request validation does with untrusted request fields
// (server/request_validation.cc needs gRPC and protobuf, so the target calls
// the engine functions it relies on): MarianTokenizer::EncodeSource on
// arbitrary bytes with the demo model's tokenizer, and
// MarianModel::ResolveOptions with options decoded from the first 12 bytes.
// The model is loaded once.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/decoding/options.h"
#include "core/model/marian_model.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const ts::core::MarianModel& Model() {
  static const std::shared_ptr<const ts::core::MarianModel>* model = [] {
    auto loaded = ts::core::MarianModel::Load(ts::fuzz::DemoModelDir());
    if (!loaded.ok()) {
      std::fprintf(stderr, "cannot load the demo model: %s\n",
                   std::string(loaded.status().message()).c_str());
      std::abort();
    }
    return new std::shared_ptr<const ts::core::MarianModel>(*loaded);
  }();
  return **model;
}

template <typename T>
T Take(const uint8_t*& data, size_t& size) {
  T value{};
  const size_t n = size < sizeof(T) ? size : sizeof(T);
  std::memcpy(&value, data, n);
  data += n;
  size -= n;
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ts::core::MarianModel& model = Model();

  // Options: small signed values mostly, any float for length_penalty.
  ts::core::TranslationOptions options;
  options.beam_size = Take<int8_t>(data, size);
  options.max_length = Take<int16_t>(data, size);
  options.min_length = Take<int16_t>(data, size);
  options.num_hypotheses = Take<int8_t>(data, size);
  const uint8_t flags = Take<uint8_t>(data, size);
  const float penalty = Take<float>(data, size);
  if (flags & 1) options.length_penalty = penalty;
  if (flags & 2) options.max_length = Take<int32_t>(data, size);
  auto resolved = model.ResolveOptions(options);
  if (resolved.ok()) {
    const ts::core::TranslationOptions& r = *resolved;
    if (r.beam_size < 1 || r.beam_size > ts::core::kMaxBeamSize ||
        r.max_length < 2 ||
        r.max_length > model.config().max_position_embeddings + 1 ||
        r.min_length < 0 || r.min_length > r.max_length ||
        r.num_hypotheses < 1 || r.num_hypotheses > r.beam_size ||
        !std::isfinite(r.length_penalty)) {
      __builtin_trap();
    }
  }

  // The rest is one text.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ts::core::MarianTokenizer& tokenizer = model.tokenizer();
  auto ids = tokenizer.EncodeSource(text);
  if (!ids.ok()) return 0;
  if (ids->empty() || ids->back() != tokenizer.eos_id()) __builtin_trap();
  for (int id : *ids) {
    if (id < 0 || id >= tokenizer.vocab_size() ||
        id >= model.config().vocab_size) {
      __builtin_trap();
    }
  }
  (void)tokenizer.DecodeTarget(*ids);
  return 0;
}
