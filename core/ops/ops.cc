#include "core/ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/ops/kernels.h"

namespace ts::core::ops {
namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

// oneDNN wants non-const handles even for inputs it only reads.
void* Mutable(const float* p) { return const_cast<float*>(p); }

}  // namespace

void LayerNorm(ExecutionContext& ctx, float* x, int64_t m, int64_t d,
               const float* gamma, const float* beta, float eps) {
  const memory::desc md({m, d}, dt::f32, tag::ab);
  const memory::desc param_md({d}, dt::f32, tag::a);
  const std::string key = absl::StrCat("layer_norm:", m, ":", d, ":", eps);
  const dnnl::primitive* primitive = ctx.Find(key);
  if (primitive == nullptr) {
    const dnnl::layer_normalization_forward::desc desc(
        dnnl::prop_kind::forward_inference, md, eps,
        dnnl::normalization_flags::use_scale |
            dnnl::normalization_flags::use_shift);
    const dnnl::layer_normalization_forward::primitive_desc pd(desc,
                                                               ctx.engine());
    primitive = &ctx.Insert(key, dnnl::layer_normalization_forward(pd));
  }
  memory data(md, ctx.engine(), x);
  primitive->execute(
      ctx.stream(),
      {{DNNL_ARG_SRC, data},
       {DNNL_ARG_DST, data},
       {DNNL_ARG_SCALE, memory(param_md, ctx.engine(), Mutable(gamma))},
       {DNNL_ARG_SHIFT, memory(param_md, ctx.engine(), Mutable(beta))}});
  ctx.stream().wait();
}

void LogSoftmax(ExecutionContext& ctx, const float* x, int64_t m, int64_t n,
                float* y) {
  const memory::desc md({m, n}, dt::f32, tag::ab);
  const std::string key = absl::StrCat("log_softmax:", m, ":", n);
  const dnnl::primitive* primitive = ctx.Find(key);
  if (primitive == nullptr) {
    const dnnl::logsoftmax_forward::desc desc(
        dnnl::prop_kind::forward_inference, md, 1);
    const dnnl::logsoftmax_forward::primitive_desc pd(desc, ctx.engine());
    primitive = &ctx.Insert(key, dnnl::logsoftmax_forward(pd));
  }
  primitive->execute(ctx.stream(),
                     {{DNNL_ARG_SRC, memory(md, ctx.engine(), Mutable(x))},
                      {DNNL_ARG_DST, memory(md, ctx.engine(), y)}});
  ctx.stream().wait();
}

namespace {

// probs[capacity] = weights[j] / sum(weights) for j < num_keys, 0 after:
// `weights` are the unnormalized exp(score - max) that AttendQuery leaves.
void WriteProbabilities(const float* weights, int64_t num_keys,
                        int64_t capacity, float* probs) {
  float sum = 0.0f;
  for (int64_t j = 0; j < num_keys; ++j) sum += weights[j];
  const float inv_sum = num_keys > 0 ? 1.0f / sum : 0.0f;
  for (int64_t j = 0; j < num_keys; ++j) probs[j] = weights[j] * inv_sum;
  std::fill(probs + num_keys, probs + capacity, 0.0f);
}

}  // namespace

void Attention(const AttentionShape& s, const float* q, const float* k,
               const float* v, const int* key_lengths, float* out) {
  const int64_t d_model = s.num_heads * s.head_dim;
  const int64_t hd = s.head_dim;
#pragma omp parallel if (s.batch * s.num_heads * s.query_len * s.head_dim >= \
                         kMinParallelWork / 16)
  {
    std::vector<float> scores;
    std::vector<int64_t> offsets;
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t h = 0; h < s.num_heads; ++h) {
        const int64_t kv_row = s.kv_rows != nullptr ? s.kv_rows[n] : n;
        const int64_t num_keys = key_lengths[kv_row];
        // Where key/value j of this head is: head_dim floats in its block.
        offsets.resize(num_keys);
        if (s.block_table != nullptr) {
          const int* blocks = s.block_table + kv_row * s.table_stride;
          for (int64_t j = 0; j < num_keys; ++j) {
            offsets[j] =
                ((blocks[j / s.block_size] * s.num_heads + h) * s.block_size +
                 j % s.block_size) *
                hd;
          }
        } else {
          for (int64_t j = 0; j < num_keys; ++j) {
            offsets[j] = ((kv_row * s.num_heads + h) * s.capacity + j) * hd;
          }
        }
        scores.resize(std::max<int64_t>(num_keys, 1));
        for (int64_t t = 0; t < s.query_len; ++t) {
          const int64_t visible =
              s.causal ? std::min(num_keys, s.past + t + 1) : num_keys;
          kernels::AttendQuery(q + (n * s.query_len + t) * s.q_stride + h * hd,
                               k, v, offsets.data(), visible, hd, scores.data(),
                               out + (n * s.query_len + t) * d_model + h * hd);
          if (s.probs != nullptr) {
            WriteProbabilities(
                scores.data(), visible, s.capacity,
                s.probs +
                    ((n * s.query_len + t) * s.num_heads + h) * s.capacity);
          }
        }
      }
    }
  }
}

}  // namespace ts::core::ops
