#include "core/ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"

namespace ts::core::ops {
namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

dnnl::algorithm ToAlgorithm(Activation activation) {
  switch (activation) {
    case Activation::kSwish:
      return dnnl::algorithm::eltwise_swish;
    case Activation::kRelu:
      return dnnl::algorithm::eltwise_relu;
    case Activation::kGelu:
      return dnnl::algorithm::eltwise_gelu_erf;
    case Activation::kNone:
      break;
  }
  return dnnl::algorithm::undef;
}

// Elements below which an element-wise loop runs on one thread: a parallel
// region costs a few microseconds (much more when cores are oversubscribed),
// more than such a loop takes.
constexpr int64_t kMinParallelWork = 1 << 16;

// oneDNN wants non-const handles even for inputs it only reads.
void* Mutable(const float* p) { return const_cast<float*>(p); }

}  // namespace

namespace {

// The matmul of Linear and LinearBf16; `weights_type` is that of both x (as
// passed) and weight.
void MatmulWithPostOps(ExecutionContext& ctx, const void* x, dt weights_type,
                       int64_t m, int64_t k, const void* weight,
                       const float* bias, int64_t n, float* y,
                       Activation activation, float scale, bool accumulate) {
  const memory::desc src_md({m, k}, weights_type, tag::ab);
  // [out, in] row-major is the [K, N] weights matrix in column-major ("ba").
  const memory::desc weights_md({k, n}, weights_type, tag::ba);
  const memory::desc bias_md({1, n}, dt::f32, tag::ab);
  const memory::desc dst_md({m, n}, dt::f32, tag::ab);
  const std::string key =
      absl::StrCat("matmul:", static_cast<int>(weights_type), ":", m, ":", k,
                   ":", n, ":", bias != nullptr, ":",
                   static_cast<int>(activation), ":", scale, ":", accumulate);
  const dnnl::primitive* primitive = ctx.Find(key);
  if (primitive == nullptr) {
    dnnl::post_ops post_ops;
    if (scale != 1.0f) {
      post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, scale,
                              0.0f);
    }
    if (activation != Activation::kNone) {
      // alpha is the negative slope for relu (0: plain ReLU) and the sigmoid
      // factor for swish (1: x * sigmoid(x)); gelu ignores it.
      const float alpha = activation == Activation::kRelu ? 0.0f : 1.0f;
      post_ops.append_eltwise(1.0f, ToAlgorithm(activation), alpha, 0.0f);
    }
    if (accumulate) post_ops.append_sum(1.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(post_ops);
    const dnnl::matmul::desc desc =
        bias != nullptr
            ? dnnl::matmul::desc(src_md, weights_md, bias_md, dst_md)
            : dnnl::matmul::desc(src_md, weights_md, dst_md);
    const dnnl::matmul::primitive_desc pd(desc, attr, ctx.engine());
    primitive = &ctx.Insert(key, dnnl::matmul(pd));
  }
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(src_md, ctx.engine(), const_cast<void*>(x))},
      {DNNL_ARG_WEIGHTS,
       memory(weights_md, ctx.engine(), const_cast<void*>(weight))},
      {DNNL_ARG_DST, memory(dst_md, ctx.engine(), y)}};
  if (bias != nullptr) {
    args.emplace(DNNL_ARG_BIAS, memory(bias_md, ctx.engine(), Mutable(bias)));
  }
  primitive->execute(ctx.stream(), args);
  ctx.stream().wait();
}

uint16_t RoundToBFloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

// y[r, c] = act((products[r, c] * row_scales[r] * col_scales[c] + bias[c]) *
// scale) (+ y[r, c]); one instantiation per activation so the inner loop
// has no branch and vectorizes.
template <Activation kActivation>
void Dequantize(const int32_t* products, const float* row_scales,
                const float* col_scales, const float* bias, float scale,
                bool accumulate, int64_t m, int64_t n, float* y) {
#pragma omp parallel for schedule(static) if (m * n >= kMinParallelWork)
  for (int64_t r = 0; r < m; ++r) {
    const float row_scale = row_scales[r];
    const int32_t* a = products + r * n;
    float* out = y + r * n;
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) {
      float v = static_cast<float>(a[c]) * (row_scale * col_scales[c]);
      if (bias != nullptr) v += bias[c];
      v *= scale;
      if constexpr (kActivation == Activation::kSwish) {
        v = v / (1.0f + std::exp(-v));
      } else if constexpr (kActivation == Activation::kRelu) {
        v = std::max(v, 0.0f);
      } else if constexpr (kActivation == Activation::kGelu) {
        v = 0.5f * v * (1.0f + std::erf(v * static_cast<float>(M_SQRT1_2)));
      }
      // Not keep * out[c] + v: a fresh buffer may hold NaNs.
      out[c] = accumulate ? out[c] + v : v;
    }
  }
}

}  // namespace

void Linear(ExecutionContext& ctx, const float* x, int64_t m, int64_t k,
            const float* weight, const float* bias, int64_t n, float* y,
            Activation activation, float scale, bool accumulate) {
  MatmulWithPostOps(ctx, x, dt::f32, m, k, weight, bias, n, y, activation,
                    scale, accumulate);
}

void LinearBf16(ExecutionContext& ctx, const float* x, int64_t m, int64_t k,
                const uint16_t* weight, const float* bias, int64_t n, float* y,
                Activation activation, float scale, bool accumulate) {
  std::vector<uint16_t>& src = ctx.bf16_scratch;
  if (src.size() < static_cast<size_t>(m * k)) src.resize(m * k);
  const int64_t total = m * k;
#pragma omp parallel for simd schedule(static) if (total >= kMinParallelWork)
  for (int64_t i = 0; i < total; ++i) src[i] = RoundToBFloat16(x[i]);
  MatmulWithPostOps(ctx, src.data(), dt::bf16, m, k, weight, bias, n, y,
                    activation, scale, accumulate);
}

Int8Weights QuantizeWeights(const float* weight, int64_t n, int64_t k) {
  Int8Weights q;
  q.values.resize(n * k);
  q.scales.resize(n);
  for (int64_t r = 0; r < n; ++r) {
    const float* row = weight + r * k;
    float max_abs = 0.0f;
    for (int64_t c = 0; c < k; ++c)
      max_abs = std::max(max_abs, std::fabs(row[c]));
    const float scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    q.scales[r] = scale;
    for (int64_t c = 0; c < k; ++c) {
      q.values[r * k + c] = static_cast<int8_t>(std::lrint(row[c] / scale));
    }
  }
  return q;
}

void LinearInt8(ExecutionContext& ctx, const float* x, int64_t m, int64_t k,
                const Int8Weights& weight, const float* bias, int64_t n,
                float* y, Activation activation, float scale, bool accumulate) {
  std::vector<int8_t>& x8 = ctx.int8_scratch;
  std::vector<float>& row_scales = ctx.int8_row_scales;
  std::vector<int32_t>& acc = ctx.int32_scratch;
  if (x8.size() < static_cast<size_t>(m * k)) x8.resize(m * k);
  if (row_scales.size() < static_cast<size_t>(m)) row_scales.resize(m);
  if (acc.size() < static_cast<size_t>(m * n)) acc.resize(m * n);
#pragma omp parallel for schedule(static) if (m * k >= kMinParallelWork)
  for (int64_t r = 0; r < m; ++r) {
    const float* row = x + r * k;
    float max_abs = 0.0f;
#pragma omp simd reduction(max : max_abs)
    for (int64_t c = 0; c < k; ++c)
      max_abs = std::max(max_abs, std::fabs(row[c]));
    const float row_scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    const float inverse = 1.0f / row_scale;
    row_scales[r] = row_scale;
    int8_t* q = x8.data() + r * k;
    // Round half away from zero; |value| <= 127 by construction.
#pragma omp simd
    for (int64_t c = 0; c < k; ++c) {
      const float v = row[c] * inverse;
      q[c] =
          static_cast<int8_t>(static_cast<int32_t>(v + std::copysign(0.5f, v)));
    }
  }
  const memory::desc src_md({m, k}, dt::s8, tag::ab);
  const memory::desc weights_md({k, n}, dt::s8, tag::ba);
  const memory::desc dst_md({m, n}, dt::s32, tag::ab);
  const std::string key = absl::StrCat("matmul_s8:", m, ":", k, ":", n);
  const dnnl::primitive* primitive = ctx.Find(key);
  if (primitive == nullptr) {
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(src_md, weights_md, dst_md), ctx.engine());
    primitive = &ctx.Insert(key, dnnl::matmul(pd));
  }
  primitive->execute(
      ctx.stream(),
      {{DNNL_ARG_SRC, memory(src_md, ctx.engine(), x8.data())},
       {DNNL_ARG_WEIGHTS, memory(weights_md, ctx.engine(),
                                 const_cast<int8_t*>(weight.values.data()))},
       {DNNL_ARG_DST, memory(dst_md, ctx.engine(), acc.data())}});
  ctx.stream().wait();
  // Dequantize, then the same epilogue as the fp32 post-ops, in order.
  const float* w_scales = weight.scales.data();
  const int32_t* products = acc.data();
  switch (activation) {
    case Activation::kNone:
      Dequantize<Activation::kNone>(products, row_scales.data(), w_scales, bias,
                                    scale, accumulate, m, n, y);
      break;
    case Activation::kSwish:
      Dequantize<Activation::kSwish>(products, row_scales.data(), w_scales,
                                     bias, scale, accumulate, m, n, y);
      break;
    case Activation::kRelu:
      Dequantize<Activation::kRelu>(products, row_scales.data(), w_scales, bias,
                                    scale, accumulate, m, n, y);
      break;
    case Activation::kGelu:
      Dequantize<Activation::kGelu>(products, row_scales.data(), w_scales, bias,
                                    scale, accumulate, m, n, y);
      break;
  }
}

std::vector<uint16_t> ToBFloat16(const float* values, int64_t n) {
  std::vector<uint16_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = RoundToBFloat16(values[i]);
  return out;
}

bool BFloat16MatmulSupported() {
  try {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    const memory::desc a({2, 2}, dt::bf16, tag::ab);
    const memory::desc c({2, 2}, dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, a, c), engine);
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

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

void Attention(const AttentionShape& s, const float* q, const float* k,
               const float* v, const int* key_lengths, float* out) {
  const int64_t d_model = s.num_heads * s.head_dim;
  const int64_t hd = s.head_dim;
#pragma omp parallel if (s.batch * s.num_heads * s.query_len * s.head_dim >= \
                         kMinParallelWork / 16)
  {
    std::vector<float> scores;
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t h = 0; h < s.num_heads; ++h) {
        const int64_t kv_row = s.kv_rows != nullptr ? s.kv_rows[n] : n;
        const int64_t num_keys = key_lengths[kv_row];
        const int64_t head_offset =
            (kv_row * s.num_heads + h) * s.capacity * hd;
        const float* k_head = k + head_offset;
        const float* v_head = v + head_offset;
        scores.resize(std::max<int64_t>(num_keys, 1));
        for (int64_t t = 0; t < s.query_len; ++t) {
          const float* q_vec = q + (n * s.query_len + t) * s.q_stride + h * hd;
          float* out_vec = out + (n * s.query_len + t) * d_model + h * hd;
          const int64_t visible =
              s.causal ? std::min(num_keys, s.past + t + 1) : num_keys;
          float max_score = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < visible; ++j) {
            const float* k_vec = k_head + j * hd;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t c = 0; c < hd; ++c) dot += q_vec[c] * k_vec[c];
            scores[j] = dot;
            max_score = std::max(max_score, dot);
          }
          float sum = 0.0f;
          for (int64_t j = 0; j < visible; ++j) {
            scores[j] = std::exp(scores[j] - max_score);
            sum += scores[j];
          }
          const float inv_sum = visible > 0 ? 1.0f / sum : 0.0f;
          std::fill(out_vec, out_vec + hd, 0.0f);
          for (int64_t j = 0; j < visible; ++j) {
            const float p = scores[j] * inv_sum;
            const float* v_vec = v_head + j * hd;
#pragma omp simd
            for (int64_t c = 0; c < hd; ++c) out_vec[c] += p * v_vec[c];
          }
        }
      }
    }
  }
}

}  // namespace ts::core::ops
