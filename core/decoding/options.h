// Options and results of decoding and encoding, as plain structs.
#ifndef TRANSFORMER_SERVING_CORE_DECODING_OPTIONS_H_
#define TRANSFORMER_SERVING_CORE_DECODING_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace ts::core {

// Options of one translation, with the meaning of the same-named arguments of
// `MarianMTModel.generate` in transformers. A value of 0 means "the model's
// default" (generation_config.json, else config.json); ResolveOptions in
// MarianModel fills those in.
struct TranslationOptions {
  int beam_size = 0;  // 1 = greedy search; 0 = model default (num_beams)
  float length_penalty =
      1.0f;            // score = sum(log_probs) / length^length_penalty
  int max_length = 0;  // tokens, counting the decoder start token; 0 = default
  int min_length = 0;  // tokens, counting the decoder start token
  int num_hypotheses = 1;  // best hypotheses returned, <= beam_size; with
                           // do_sample: independent samples per source
  // Record each hypothesis's cross-attention (Hypothesis::attention) from
  // decoder layer `attention_layer` (0-based; negative counts from the end;
  // ResolveOptions makes it non-negative). Off: no extra work or memory.
  bool return_attention = false;
  int attention_layer = -1;
  // Sampling (generate's do_sample with num_beams 1; beam_size must be 1):
  // each token is drawn from softmax(scores / temperature) restricted to the
  // top_k likeliest tokens (0 = all), then to the smallest set whose
  // probability reaches top_p (core/decoding/sampling.h).
  bool do_sample = false;
  int top_k = 0;             // >= 0; 0 = no top-k filter
  float top_p = 1.0f;        // in (0, 1]; 1 = no top-p filter
  float temperature = 1.0f;  // > 0
  // Random streams: sample s of source text t draws from the stream of
  // (seed, t, s) (SampleStreamKey), so results do not depend on batching.
  uint64_t seed = 0;
  // Repetition controls of generate (transformers 4.30), applied to each
  // hypothesis's own tokens, the decoder start token included (generate's
  // decoder input_ids). Greedy search and sampling apply them to the raw
  // logits (the model's log-probs stay the scores), beam search to the
  // log-probs it ranks by, as greedy_search, sample and beam_search do.
  // no_repeat_ngram_size (NoRepeatNGramLogitsProcessor): a token that would
  // repeat an n-gram the hypothesis already holds is banned; 0 = off.
  int no_repeat_ngram_size = 0;
  // repetition_penalty (RepetitionPenaltyLogitsProcessor): the score of each
  // distinct token the hypothesis holds is multiplied by it if negative,
  // divided by it otherwise; > 0, 1 = off.
  float repetition_penalty = 1.0f;
  // Marian's --max-length-factor, not an option of generate: a hypothesis
  // ends after ceil(max_length_factor x source tokens) + 10 generated tokens
  // (source tokens: the encoder's input, </s> included; the product in
  // double), without </s> and without the forced eos of max_length, unless
  // max_length ends it first. It overrides min_length. 0 = off.
  double max_length_factor = 0.0;

  bool operator==(const TranslationOptions&) const = default;
};

// Token streaming: called once per decoding step for each live sequence with
// `source` (its index in the batch) and `token`, the target id just chosen
// for it (the final eos included; the decoder start token never), in step
// order, so a source's calls spell out exactly its Hypothesis::ids. Only a
// search that has one sequence per source streams: greedy search, or sampling
// with num_hypotheses 1. Beam search (whose best hypothesis is known only at
// the end) and several samples per source make no calls. Runs on the thread
// that called Search (never inside an OpenMP region), between decoder steps:
// it should be quick, and must not call back into the search.
using TokenCallback = std::function<void(int source, int token)>;

// One output sequence.
struct Hypothesis {
  // Generated ids without the decoder start token; ends with eos when the
  // sequence finished.
  std::vector<int> ids;
  // sum of log_probs / length^length_penalty, where length counts the decoder
  // start token and the generated tokens but not the final eos (as
  // BeamHypotheses in transformers). Used for greedy search too.
  float score = 0.0f;
  // Only with TranslationOptions::return_attention: the cross-attention of
  // the chosen decoder layer averaged over its heads, [ids.size(), src_len]
  // row-major (src_len = source tokens, </s> included). Row t holds the
  // probabilities while ids[t] was produced; each row sums to 1.
  std::vector<float> attention;
};

// Hypotheses of one source sentence, best first.
struct TranslationResult {
  std::vector<Hypothesis> hypotheses;
};

// How Encode turns encoder hidden states into vectors.
enum class Pooling {
  kMean,    // mean over the real tokens (</s> included, padding excluded)
  kFirst,   // the first token's hidden state
  kTokens,  // every token's hidden state
};

struct EncodeOptions {
  Pooling pooling = Pooling::kMean;
  bool normalize = false;  // L2-normalize each output vector
  bool operator==(const EncodeOptions&) const = default;
};

// Encoder output of one sentence.
struct EncodeResult {
  int num_tokens = 0;  // source tokens, </s> included
  int dim = 0;         // d_model
  // [dim] for kMean and kFirst, [num_tokens, dim] row-major for kTokens.
  std::vector<float> values;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_DECODING_OPTIONS_H_
