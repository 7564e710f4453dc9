#include "core/layers/multi_head_attention.h"

#include <algorithm>
#include <cmath>

namespace ts::core {

void KeyValueCache::Resize(int64_t new_rows, int64_t new_num_heads,
                           int64_t new_capacity, int64_t new_head_dim) {
  rows = new_rows;
  num_heads = new_num_heads;
  capacity = new_capacity;
  head_dim = new_head_dim;
  const size_t size = rows * num_heads * capacity * head_dim;
  if (keys.size() < size) {
    keys.resize(size);
    values.resize(size);
  }
}

KeyValueView KeyValueCache::View() {
  KeyValueView view;
  view.keys = keys.data();
  view.values = values.data();
  view.block_size = capacity;
  view.num_heads = num_heads;
  view.head_dim = head_dim;
  return view;
}

namespace {

// The ops::Attention addressing of `kv`.
void SetKeyValueLayout(const KeyValueView& kv, ops::AttentionShape* shape) {
  if (kv.table != nullptr) {
    shape->block_table = kv.table;
    shape->table_stride = kv.stride;
    shape->block_size = kv.block_size;
  } else {
    shape->capacity = kv.block_size;
  }
}

}  // namespace

absl::StatusOr<MultiHeadAttention> MultiHeadAttention::Load(
    const Weights& weights, const std::string& prefix, int64_t d_model,
    int64_t num_heads) {
  MultiHeadAttention attention;
  attention.num_heads_ = num_heads;
  attention.head_dim_ = d_model / num_heads;
  Linear q, k, v;
  for (auto [name, linear] :
       {std::pair{".q_proj", &q}, std::pair{".k_proj", &k},
        std::pair{".v_proj", &v},
        std::pair{".out_proj", &attention.out_proj_}}) {
    auto loaded = Linear::Load(weights, prefix + name, d_model, d_model);
    if (!loaded.ok()) return loaded.status();
    *linear = *loaded;
  }
  // MarianAttention computes (x Wq^T + bq) * scaling; scaling the weights
  // and bias instead is exact for power-of-two scalings (head_dim 64).
  const float scaling =
      1.0f / std::sqrt(static_cast<float>(attention.head_dim_));
  const int64_t dd = d_model * d_model;
  auto qkv_weight = std::make_shared<std::vector<float>>(3 * dd);
  auto qkv_bias = std::make_shared<std::vector<float>>(3 * d_model);
  float* w = qkv_weight->data();
  float* b = qkv_bias->data();
  for (int64_t i = 0; i < dd; ++i) w[i] = q.weight[i] * scaling;
  std::copy_n(k.weight, dd, w + dd);
  std::copy_n(v.weight, dd, w + 2 * dd);
  for (int64_t i = 0; i < d_model; ++i) b[i] = q.bias[i] * scaling;
  std::copy_n(k.bias, d_model, b + d_model);
  std::copy_n(v.bias, d_model, b + 2 * d_model);
  attention.qkv_proj_ = Linear::View(w, b, d_model, 3 * d_model);
  attention.q_proj_ = Linear::View(w, b, d_model, d_model);
  attention.kv_proj_ = Linear::View(w + dd, b + d_model, d_model, 2 * d_model);
  attention.qkv_weight_ = std::move(qkv_weight);
  attention.qkv_bias_ = std::move(qkv_bias);
  return attention;
}

void MultiHeadAttention::Pack(ops::ComputeType compute_type, AttentionUse use) {
  if (use != AttentionUse::kCross) qkv_proj_.Pack(compute_type);
  if (use != AttentionUse::kSelf) {
    q_proj_.Pack(compute_type);
    kv_proj_.Pack(compute_type);
  }
  out_proj_.Pack(compute_type);
  // Views of the copy about to go: none may be read again.
  qkv_proj_.weight = q_proj_.weight = kv_proj_.weight = nullptr;
  qkv_weight_.reset();
}

int64_t MultiHeadAttention::PackedBytes() const {
  int64_t bytes = qkv_bias_ ? static_cast<int64_t>(qkv_bias_->size()) * 4 : 0;
  for (const Linear* linear : {&qkv_proj_, &q_proj_, &kv_proj_, &out_proj_}) {
    if (linear->packed) bytes += linear->packed->bytes();
  }
  return bytes;
}

void MultiHeadAttention::StoreKeyValues(const float* projected, int64_t stride,
                                        int64_t k_offset, int64_t rows,
                                        int64_t len, const int* past,
                                        const KeyValueView& kv) const {
  const int64_t d_model = num_heads_ * head_dim_;
  // [rows, len, heads, head_dim] -> each row's block for these positions.
#pragma omp parallel for schedule(static) if (rows * len * d_model >= \
                                              ops::kMinParallelWork)
  for (int64_t n = 0; n < rows; ++n) {
    const int64_t first = past != nullptr ? past[n] : 0;
    for (int64_t t = 0; t < len; ++t) {
      const float* src = projected + (n * len + t) * stride + k_offset;
      for (int64_t h = 0; h < num_heads_; ++h) {
        const int64_t offset = kv.Offset(n, h, first + t);
        std::copy_n(src + h * head_dim_, head_dim_, kv.keys + offset);
        std::copy_n(src + d_model + h * head_dim_, head_dim_,
                    kv.values + offset);
      }
    }
  }
}

void MultiHeadAttention::SelfAttention(ExecutionContext& ctx, float* hidden,
                                       int64_t rows, int64_t len,
                                       const int* past, const KeyValueView& kv,
                                       const int* key_lengths, bool causal,
                                       AttentionScratch* scratch) const {
  const int64_t d_model = num_heads_ * head_dim_;
  const int64_t m = rows * len;
  if (scratch->projected.size() < static_cast<size_t>(m * 3 * d_model)) {
    scratch->projected.resize(m * 3 * d_model);
  }
  if (scratch->context.size() < static_cast<size_t>(m * d_model)) {
    scratch->context.resize(m * d_model);
  }
  qkv_proj_(ctx, hidden, m, scratch->projected.data());
  StoreKeyValues(scratch->projected.data(), 3 * d_model, d_model, rows, len,
                 past, kv);
  ops::AttentionShape shape;
  shape.batch = rows;
  shape.query_len = len;
  shape.num_heads = num_heads_;
  shape.head_dim = head_dim_;
  shape.q_stride = 3 * d_model;
  SetKeyValueLayout(kv, &shape);
  shape.causal = causal;
  if (causal && past != nullptr) shape.past = past[0];
  ops::Attention(shape, scratch->projected.data(), kv.keys, kv.values,
                 key_lengths, scratch->context.data());
  out_proj_(ctx, scratch->context.data(), m, hidden, ops::Activation::kNone,
            1.0f, /*accumulate=*/true);
}

void MultiHeadAttention::SelfAttention(ExecutionContext& ctx, float* hidden,
                                       int64_t rows, int64_t len, int64_t past,
                                       KeyValueCache* cache,
                                       const int* key_lengths, bool causal,
                                       AttentionScratch* scratch) const {
  const std::vector<int> pasts(rows, static_cast<int>(past));
  SelfAttention(ctx, hidden, rows, len, pasts.data(), cache->View(),
                key_lengths, causal, scratch);
}

void MultiHeadAttention::ProjectKeyValues(ExecutionContext& ctx,
                                          const float* memory, int64_t rows,
                                          int64_t len, const KeyValueView& kv,
                                          AttentionScratch* scratch) const {
  const int64_t d_model = num_heads_ * head_dim_;
  const int64_t m = rows * len;
  if (scratch->projected.size() < static_cast<size_t>(m * 2 * d_model)) {
    scratch->projected.resize(m * 2 * d_model);
  }
  kv_proj_(ctx, memory, m, scratch->projected.data());
  StoreKeyValues(scratch->projected.data(), 2 * d_model, 0, rows, len, nullptr,
                 kv);
}

void MultiHeadAttention::ProjectKeyValues(ExecutionContext& ctx,
                                          const float* memory, int64_t rows,
                                          int64_t len, KeyValueCache* cache,
                                          AttentionScratch* scratch) const {
  ProjectKeyValues(ctx, memory, rows, len, cache->View(), scratch);
}

void MultiHeadAttention::CrossAttention(
    ExecutionContext& ctx, float* hidden, int64_t rows, int64_t len,
    const KeyValueView& kv, const int* key_lengths, const int* kv_rows,
    AttentionScratch* scratch, float* probs, int64_t probs_stride) const {
  const int64_t d_model = num_heads_ * head_dim_;
  const int64_t m = rows * len;
  if (scratch->projected.size() < static_cast<size_t>(m * d_model)) {
    scratch->projected.resize(m * d_model);
  }
  if (scratch->context.size() < static_cast<size_t>(m * d_model)) {
    scratch->context.resize(m * d_model);
  }
  q_proj_(ctx, hidden, m, scratch->projected.data());
  ops::AttentionShape shape;
  shape.batch = rows;
  shape.query_len = len;
  shape.num_heads = num_heads_;
  shape.head_dim = head_dim_;
  shape.q_stride = d_model;
  shape.kv_rows = kv_rows;
  SetKeyValueLayout(kv, &shape);
  if (probs != nullptr) shape.capacity = probs_stride;
  shape.probs = probs;
  ops::Attention(shape, scratch->projected.data(), kv.keys, kv.values,
                 key_lengths, scratch->context.data());
  out_proj_(ctx, scratch->context.data(), m, hidden, ops::Activation::kNone,
            1.0f, /*accumulate=*/true);
}

}  // namespace ts::core
