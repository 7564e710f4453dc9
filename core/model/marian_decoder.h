// The MarianMT decoder as a step model: one new position per Step, with a
// self-attention KV cache per layer and cross-attention keys/values computed
// once from the encoder output.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_MARIAN_DECODER_H_
#define TRANSFORMER_SERVING_CORE_MODEL_MARIAN_DECODER_H_

#include <vector>

#include "core/decoding/search.h"
#include "core/model/config.h"
#include "core/model/marian_network.h"

namespace ts::core {

// Buffers a decoder keeps between calls (owned by a Translator, reused).
struct DecoderWorkspace {
  std::vector<KeyValueCache>
      self_kv;  // per layer, [slots, heads, capacity, head_dim]
  std::vector<KeyValueCache>
      cross_kv;               // per layer, [batch, heads, src_len, head_dim]
  std::vector<float> hidden;  // [rows, d_model]
  LayerScratch layer;
};

class MarianDecoder : public StepModel {
 public:
  // encoder_output: [batch, src_len, d_model]; src_lengths[b] real tokens.
  // capacity: positions the KV cache holds (max_length). Starts with one row
  // per source.
  MarianDecoder(const MarianNetwork& network, const ModelConfig& config,
                ExecutionContext& ctx, const float* encoder_output, int batch,
                int src_len, const std::vector<int>& src_lengths, int capacity,
                DecoderWorkspace* workspace);

  void Step(const std::vector<int>& tokens, float* logits) override;
  void Reorder(const std::vector<int>& parents) override;

  // From now on, each Step/Forward writes the cross-attention probabilities
  // of decoder layer `layer` (0-based) into *probs, resized to [rows, len,
  // num_heads, src_len] (0 beyond a source's real tokens). nullptr stops it.
  // Only attention recording calls this: other steps do no extra work.
  void RecordCrossAttention(int layer, std::vector<float>* probs);

  int src_len() const { return src_len_; }
  int num_heads() const;

  // Teacher forcing: feeds tokens [rows, len] at positions [0, len) in one
  // pass (causal mask) and writes logits [rows, len, vocab]. Needs a fresh
  // decoder with rows == batch.
  void Forward(const std::vector<int>& tokens, int len, float* logits);

 private:
  void RunLayers(const int* tokens, int len, float* logits);

  const MarianNetwork& network_;
  const ModelConfig& config_;
  ExecutionContext& ctx_;
  DecoderWorkspace* ws_;
  std::vector<int> src_lengths_;
  std::vector<int> row_source_;  // cross-attention source of each row
  int src_len_;
  int capacity_;
  int past_ = 0;  // positions already in the KV cache
  int probs_layer_ = -1;
  std::vector<float>* probs_ = nullptr;  // see RecordCrossAttention
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_MARIAN_DECODER_H_
