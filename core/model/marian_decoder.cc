#include "core/model/marian_decoder.h"

#include <algorithm>
#include <limits>

#include "core/ops/ops.h"

namespace ts::core {
namespace {

constexpr int kBlockSize = KeyValueBlocks::kBlockSize;

int BlocksFor(int positions) {
  return (positions + kBlockSize - 1) / kBlockSize;
}

// Lays `lists` out as a dense [lists, stride] table (stride: the longest
// list, at least 1); the padding entries are never read.
int64_t FillTable(const std::vector<const std::vector<int>*>& lists,
                  std::vector<int>* table) {
  size_t stride = 1;
  for (const auto* list : lists) stride = std::max(stride, list->size());
  table->assign(lists.size() * stride, 0);
  for (size_t i = 0; i < lists.size(); ++i) {
    std::copy(lists[i]->begin(), lists[i]->end(), table->begin() + i * stride);
  }
  return static_cast<int64_t>(stride);
}

// The workspace's pool, created on first use.
KeyValueBlocks* Pool(const MarianNetwork& network, const ModelConfig& config,
                     DecoderWorkspace* workspace) {
  if (workspace->blocks == nullptr) {
    const int64_t heads = config.decoder_attention_heads;
    workspace->blocks = std::make_unique<KeyValueBlocks>(
        static_cast<int>(network.decoder_layers.size()), heads,
        config.d_model / heads, workspace->reserve_bytes);
  }
  return workspace->blocks.get();
}

}  // namespace

MarianDecoder::MarianDecoder(const MarianNetwork& network,
                             const ModelConfig& config, ExecutionContext& ctx,
                             DecoderWorkspace* workspace)
    : network_(network),
      config_(config),
      ctx_(ctx),
      ws_(workspace),
      blocks_(Pool(network, config, workspace)),
      rows_(blocks_) {}

MarianDecoder::MarianDecoder(const MarianNetwork& network,
                             const ModelConfig& config, ExecutionContext& ctx,
                             const float* encoder_output, int batch,
                             int src_len, const std::vector<int>& src_lengths,
                             DecoderWorkspace* workspace)
    : MarianDecoder(network, config, ctx, workspace) {
  for (int source : AddSources(encoder_output, batch, src_len, src_lengths)) {
    AddRow(source);
  }
}

MarianDecoder::~MarianDecoder() {
  for (Source& source : sources_) {
    for (int block : source.blocks) blocks_->Release(block);
  }
}

std::vector<int> MarianDecoder::AddSources(
    const float* encoder_output, int batch, int src_len,
    const std::vector<int>& src_lengths) {
  // The projection writes every padded position: give each source blocks
  // for src_len, then keep only those of its real tokens.
  std::vector<std::vector<int>> lists(batch);
  std::vector<const std::vector<int>*> pointers(batch);
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < BlocksFor(src_len); ++i) {
      lists[b].push_back(blocks_->Allocate());
    }
    pointers[b] = &lists[b];
  }
  std::vector<int> table;
  const int64_t stride = FillTable(pointers, &table);
  for (size_t i = 0; i < network_.decoder_layers.size(); ++i) {
    network_.decoder_layers[i].ComputeCrossKeyValues(
        ctx_, encoder_output, batch, src_len,
        blocks_->View(static_cast<int>(i), table.data(), stride), &ws_->layer);
  }
  std::vector<int> ids(batch);
  for (int b = 0; b < batch; ++b) {
    while (static_cast<int>(lists[b].size()) > BlocksFor(src_lengths[b])) {
      blocks_->Release(lists[b].back());
      lists[b].pop_back();
    }
    if (free_sources_.empty()) {
      ids[b] = static_cast<int>(sources_.size());
      sources_.emplace_back();
    } else {
      ids[b] = free_sources_.back();
      free_sources_.pop_back();
    }
    sources_[ids[b]].blocks = std::move(lists[b]);
    sources_[ids[b]].length = src_lengths[b];
    max_src_len_ = std::max(max_src_len_, src_lengths[b]);
  }
  return ids;
}

void MarianDecoder::ReleaseSource(int source) {
  for (int block : sources_[source].blocks) blocks_->Release(block);
  sources_[source] = Source();
  free_sources_.push_back(source);
}

int MarianDecoder::AddRow(int source) {
  row_source_.push_back(source);
  return rows_.AddRow();
}

void MarianDecoder::RunLayers(const int* tokens, int len, float* logits) {
  const int rows = rows_.rows();
  const int64_t d = config_.d_model;
  rows_.Prepare(len);
  ws_->positions.resize(rows);
  ws_->self_lengths.resize(rows);
  for (int n = 0; n < rows; ++n) {
    ws_->positions[n] = rows_.length(n);
    ws_->self_lengths[n] = rows_.length(n) + len;
  }
  const int64_t self_stride = rows_.FillTable(&ws_->self_table);
  std::vector<const std::vector<int>*> lists(sources_.size());
  src_lengths_.resize(sources_.size());
  for (size_t s = 0; s < sources_.size(); ++s) {
    lists[s] = &sources_[s].blocks;
    src_lengths_[s] = sources_[s].length;
  }
  const int64_t cross_stride = FillTable(lists, &ws_->cross_table);

  ws_->hidden.resize(static_cast<size_t>(rows) * len * d);
  if (len == 1) {
    network_.decoder_embeddings.ForwardAt(tokens, rows, ws_->positions.data(),
                                          ws_->hidden.data());
  } else {
    // Teacher forcing: every row starts at position 0.
    network_.decoder_embeddings.Forward(tokens, rows, len, 0,
                                        ws_->hidden.data());
  }
  for (size_t i = 0; i < network_.decoder_layers.size(); ++i) {
    const DecoderLayer& layer = network_.decoder_layers[i];
    float* probs = nullptr;
    if (probs_ != nullptr && probs_layers_[i]) {
      (*probs_)[i].resize(static_cast<size_t>(rows) * len * layer.num_heads() *
                          max_src_len_);
      probs = (*probs_)[i].data();
    }
    const int l = static_cast<int>(i);
    layer.Forward(ctx_, ws_->hidden.data(), rows, len, ws_->positions.data(),
                  blocks_->View(l, ws_->self_table.data(), self_stride),
                  ws_->self_lengths.data(),
                  blocks_->View(l, ws_->cross_table.data(), cross_stride),
                  src_lengths_.data(), row_source_.data(), &ws_->layer, probs,
                  max_src_len_);
  }
  rows_.Advance(len);
  network_.lm_head(ctx_, ws_->hidden.data(), static_cast<int64_t>(rows) * len,
                   logits);
}

void MarianDecoder::Step(const std::vector<int>& tokens, float* logits) {
  const int64_t rows = static_cast<int64_t>(tokens.size());
  const int64_t vocab = config_.decoder_vocab_size;
  RunLayers(tokens.data(), 1, logits);
  // MarianMTModel.adjust_logits_during_generation: <pad> is never generated,
  // and it is banned before the softmax, so it takes no probability mass.
  for (int64_t r = 0; r < rows; ++r) {
    logits[r * vocab + config_.pad_token_id] =
        -std::numeric_limits<float>::infinity();
  }
}

void MarianDecoder::RecordCrossAttention(
    std::vector<bool> layers, std::vector<std::vector<float>>* probs) {
  layers.resize(network_.decoder_layers.size());
  probs_layers_ = std::move(layers);
  probs_ = probs;
  if (probs_ != nullptr) probs_->resize(probs_layers_.size());
}

int MarianDecoder::num_heads() const { return config_.decoder_attention_heads; }

int64_t MarianDecoder::kv_bytes() const { return blocks_->bytes_in_use(); }

void MarianDecoder::Forward(const std::vector<int>& tokens, int len,
                            float* logits) {
  RunLayers(tokens.data(), len, logits);
}

void MarianDecoder::Reorder(const std::vector<int>& parents) {
  std::vector<int> sources(parents.size());
  for (size_t i = 0; i < parents.size(); ++i) {
    sources[i] = row_source_[parents[i]];
  }
  rows_.Reorder(parents);
  row_source_ = std::move(sources);
}

}  // namespace ts::core
