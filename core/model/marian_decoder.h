// The MarianMT decoder as a step model: one new position per Step, with a
// self-attention KV cache per row that grows one block at a time and
// cross-attention keys/values computed once per source.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_MARIAN_DECODER_H_
#define TRANSFORMER_SERVING_CORE_MODEL_MARIAN_DECODER_H_

#include <memory>
#include <vector>

#include "core/decoding/search.h"
#include "core/layers/key_value_blocks.h"
#include "core/model/config.h"
#include "core/model/marian_network.h"

namespace ts::core {

// Buffers a decoder keeps between calls (owned by a Translator, reused).
struct DecoderWorkspace {
  // Self- and cross-attention keys/values of every decoder layer; created
  // by the first decoder, empty again when each decoder is destroyed.
  std::unique_ptr<KeyValueBlocks> blocks;
  // Address space KeyValueBlocks reserves when created (bytes).
  int64_t reserve_bytes = 0;
  std::vector<int> self_table;    // [rows, stride] block ids
  std::vector<int> cross_table;   // [sources, stride] block ids
  std::vector<int> positions;     // [rows] position of this step's token
  std::vector<int> self_lengths;  // [rows] keys after this step
  std::vector<float> hidden;      // [rows, d_model]
  LayerScratch layer;
};

class MarianDecoder : public StepModel {
 public:
  // An empty decoder: no sources, no rows (see AddSources, AddRow).
  MarianDecoder(const MarianNetwork& network, const ModelConfig& config,
                ExecutionContext& ctx, DecoderWorkspace* workspace);
  // AddSources(encoder_output [batch, src_len, d_model], src_lengths), then
  // one row per source.
  MarianDecoder(const MarianNetwork& network, const ModelConfig& config,
                ExecutionContext& ctx, const float* encoder_output, int batch,
                int src_len, const std::vector<int>& src_lengths,
                DecoderWorkspace* workspace);
  // Returns every block to the workspace's pool.
  ~MarianDecoder() override;

  MarianDecoder(const MarianDecoder&) = delete;
  MarianDecoder& operator=(const MarianDecoder&) = delete;

  // Computes the cross-attention keys/values of `batch` sources,
  // encoder_output [batch, src_len, d_model] right-padded, src_lengths[b]
  // real tokens. Returns their source ids (for AddRow, ReleaseSource).
  std::vector<int> AddSources(const float* encoder_output, int batch,
                              int src_len, const std::vector<int>& src_lengths);
  // Frees a source's cross-attention blocks; no row may read it any more.
  void ReleaseSource(int source);
  // Appends a row that reads `source`, at position 0 (its next Step token is
  // the decoder start). Returns the row index.
  int AddRow(int source);

  // tokens[rows]: each row's token at its own next position.
  void Step(const std::vector<int>& tokens, float* logits) override;
  // Row i becomes old row parents[i] (sharing its blocks); rows not named
  // give their blocks back.
  void Reorder(const std::vector<int>& parents) override;

  // From now on, each Step/Forward writes the cross-attention probabilities
  // of each decoder layer l with layers[l] set into (*probs)[l], resized to
  // [rows, len, num_heads, src_len()] (0 beyond a source's real tokens).
  // nullptr stops it. Only attention recording calls this: other steps do
  // no extra work.
  void RecordCrossAttention(std::vector<bool> layers,
                            std::vector<std::vector<float>>* probs);

  int rows() const { return rows_.rows(); }
  // The longest source added so far: the stride of recorded probabilities.
  int src_len() const { return max_src_len_; }
  int num_heads() const;
  // Bytes of the pool's blocks in use (self and cross, every layer).
  int64_t kv_bytes() const;
  // Bytes of one block (16 positions, every layer, keys and values).
  int64_t block_bytes() const { return blocks_->block_bytes(); }

  // Teacher forcing: feeds tokens [rows, len] at positions [0, len) in one
  // pass (causal mask) and writes logits [rows, len, vocab]. Needs rows that
  // have not stepped yet.
  void Forward(const std::vector<int>& tokens, int len, float* logits);

 private:
  struct Source {
    std::vector<int> blocks;
    int length = 0;  // real tokens; 0 once released
  };

  void RunLayers(const int* tokens, int len, float* logits);

  const MarianNetwork& network_;
  const ModelConfig& config_;
  ExecutionContext& ctx_;
  DecoderWorkspace* ws_;
  KeyValueBlocks* blocks_;
  KeyValueRows rows_;
  std::vector<int> row_source_;  // [rows] source each row reads
  std::vector<Source> sources_;
  std::vector<int> free_sources_;
  std::vector<int> src_lengths_;  // [sources_] for the attention call
  int max_src_len_ = 0;
  std::vector<bool> probs_layers_;
  std::vector<std::vector<float>>* probs_ = nullptr;  // RecordCrossAttention
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_MARIAN_DECODER_H_
