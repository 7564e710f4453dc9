// Sampling as `generate(do_sample=True)` in transformers 4.30: the logits
// warpers (temperature, top-k, top-p, in this order) and multinomial sampling
// over one row of scores, with random streams that depend only on (seed,
// text index, sample index) and the decoding step, never on batching.
#ifndef TRANSFORMER_SERVING_CORE_DECODING_SAMPLING_H_
#define TRANSFORMER_SERVING_CORE_DECODING_SAMPLING_H_

#include <cstdint>

#include "core/decoding/options.h"

namespace ts::core {

// Where one source's samples take their random numbers from: its request's
// seed and its position in that request.
struct SampleSource {
  uint64_t seed = 0;
  int text_index = 0;
  bool operator==(const SampleSource&) const = default;
};

// Key of the random stream of sample `sample_index` of `source`: SplitMix64's
// mixing function (Steele, Lea & Flood 2014, as java.util.SplittableRandom)
// applied to seed, text index and sample index in turn.
uint64_t SampleStreamKey(const SampleSource& source, int sample_index);

// The draw of stream `key` at decoding step `cur_len` (counting the decoder
// start token), uniform in [0, 1): the top 53 bits of output number cur_len of
// the SplitMix64 generator seeded with `key`. Counter-based, so a sequence
// carries no generator state: a draw is the same whatever ran before it.
double SampleUniform(uint64_t key, int cur_len);

// Draws one token from one row of scores [vocab] (logits after the model's
// rules, ApplySearchRules: banned tokens are -inf) as generate's sample():
// softmax of the scores after TemperatureLogitsWarper (scores / temperature),
// TopKLogitsWarper (keeps every token scoring at least the top_k-th score, so
// ties at the boundary stay; top_k 0: off) and TopPLogitsWarper (keeps a token
// when the tokens likelier than it hold less than top_p of the probability;
// at least one token stays; top_p 1: off), then inverse-CDF sampling with
// `uniform` in [0, 1). Shifting the scores does not change the result, so raw
// logits and log-probs give the same token. `options` must be valid
// (temperature > 0, top_k >= 0, top_p in (0, 1]). Returns -1 only if every
// score is -inf. Thread-safe.
int SampleToken(const float* scores, int vocab,
                const TranslationOptions& options, double uniform);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_DECODING_SAMPLING_H_
