#include "core/layers/multi_head_attention.h"

#include <algorithm>
#include <cmath>

namespace ts::core {

void KeyValueCache::Resize(int64_t new_rows, int64_t num_heads,
                           int64_t new_capacity, int64_t head_dim) {
  rows = new_rows;
  capacity = new_capacity;
  const size_t size = rows * num_heads * capacity * head_dim;
  if (keys.size() < size) {
    keys.resize(size);
    values.resize(size);
  }
}

void KeyValueCache::Gather(const std::vector<int>& parents, int64_t num_heads,
                           int64_t head_dim, int64_t length,
                           KeyValueCache* scratch) {
  scratch->Resize(rows, num_heads, capacity, head_dim);
  const int64_t row_size = num_heads * capacity * head_dim;
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t h = 0; h < num_heads; ++h) {
      const int64_t from = parents[n] * row_size + h * capacity * head_dim;
      const int64_t to = n * row_size + h * capacity * head_dim;
      std::copy_n(keys.begin() + from, length * head_dim,
                  scratch->keys.begin() + to);
      std::copy_n(values.begin() + from, length * head_dim,
                  scratch->values.begin() + to);
    }
  }
  std::swap(keys, scratch->keys);
  std::swap(values, scratch->values);
}

absl::StatusOr<MultiHeadAttention> MultiHeadAttention::Load(
    const Weights& weights, const std::string& prefix, int64_t d_model,
    int64_t num_heads) {
  MultiHeadAttention attention;
  attention.num_heads_ = num_heads;
  attention.head_dim_ = d_model / num_heads;
  for (auto [name, linear] :
       {std::pair{".q_proj", &attention.q_proj_},
        std::pair{".k_proj", &attention.k_proj_},
        std::pair{".v_proj", &attention.v_proj_},
        std::pair{".out_proj", &attention.out_proj_}}) {
    auto loaded = Linear::Load(weights, prefix + name, d_model, d_model);
    if (!loaded.ok()) return loaded.status();
    *linear = *loaded;
  }
  return attention;
}

void MultiHeadAttention::ProjectKeyValues(ExecutionContext& ctx, const float* x,
                                          int64_t rows, int64_t len,
                                          int64_t offset, KeyValueCache* cache,
                                          std::vector<float>* scratch) const {
  const int64_t d_model = num_heads_ * head_dim_;
  scratch->resize(std::max<size_t>(scratch->size(), rows * len * d_model));
  for (int which = 0; which < 2; ++which) {
    (which == 0 ? k_proj_ : v_proj_)(ctx, x, rows * len, scratch->data());
    float* dst = which == 0 ? cache->keys.data() : cache->values.data();
    // [rows, len, heads, head_dim] -> [rows, heads, capacity, head_dim]
    for (int64_t n = 0; n < rows; ++n) {
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t h = 0; h < num_heads_; ++h) {
          std::copy_n(scratch->data() + (n * len + t) * d_model + h * head_dim_,
                      head_dim_,
                      dst + ((n * num_heads_ + h) * cache->capacity + offset + t) *
                                head_dim_);
        }
      }
    }
  }
}

void MultiHeadAttention::Attend(ExecutionContext& ctx, const float* query_input,
                                int64_t rows, int64_t len,
                                const KeyValueCache& cache,
                                const int* key_lengths, const int* kv_rows,
                                bool causal, int64_t past, float* hidden,
                                std::vector<float>* q_scratch,
                                std::vector<float>* context_scratch,
                                float* probs, int64_t probs_stride) const {
  const int64_t d_model = num_heads_ * head_dim_;
  const size_t size = rows * len * d_model;
  if (q_scratch->size() < size) q_scratch->resize(size);
  if (context_scratch->size() < size) context_scratch->resize(size);
  // MarianAttention scales the projected (biased) query by head_dim^-0.5.
  const float scaling = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  q_proj_(ctx, query_input, rows * len, q_scratch->data(),
          ops::Activation::kNone, scaling);
  ops::AttentionShape shape;
  shape.batch = rows;
  shape.query_len = len;
  shape.num_heads = num_heads_;
  shape.head_dim = head_dim_;
  shape.capacity = cache.capacity;
  shape.key_stride = probs_stride;
  shape.kv_rows = kv_rows;
  shape.causal = causal;
  shape.past = past;
  ops::Attention(shape, q_scratch->data(), cache.keys.data(),
                 cache.values.data(), key_lengths, context_scratch->data(),
                 probs);
  out_proj_(ctx, context_scratch->data(), rows * len, hidden,
            ops::Activation::kNone, 1.0f, /*accumulate=*/true);
}

}  // namespace ts::core
