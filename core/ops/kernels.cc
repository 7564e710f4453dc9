#include "core/ops/kernels.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>

namespace ts::core::ops::kernels {
namespace {

// exp(x) in a form that vectorizes (std::exp does not without -ffast-math):
// exp(x) = 2^n exp(r), n = round(x / ln 2), |r| <= ln(2) / 2, exp(r) by the
// degree-6 polynomial of Cephes' expf (about 1 ulp). x is clamped to
// [ln(FLT_MIN), 88]: -inf gives 1.2e-38 instead of 0, which no sum here can
// tell apart (each sum has a term >= 1).
[[gnu::always_inline]] inline float Exp(float x) {
  // Written so that NaN becomes the lower bound: the cast below must not see
  // a NaN (undefined behaviour), whatever a checkpoint computes.
  x = x > -87.33654f ? x : -87.33654f;
  x = x < 88.0f ? x : 88.0f;
  // Round to nearest by the 1.5 * 2^23 trick: exact, and no libm call.
  constexpr float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  // r = x - n ln(2), with ln(2) split in two for precision (Cody-Waite).
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent = static_cast<int32_t>(n) + 127;  // in [1, 254]
  return p * std::bit_cast<float>(exponent << 23);
}

// max(x[0..n)) (-inf for n = 0), optionally of |x|. GCC leaves an
// `omp simd reduction(max)` scalar; 16 independent lanes vectorize.
template <bool kAbsolute>
[[gnu::always_inline]] inline float MaxOf(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  float lanes[kLanes];
  std::fill_n(lanes, kLanes, -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const float v = kAbsolute ? std::fabs(x[i + l]) : x[i + l];
      lanes[l] = lanes[l] > v ? lanes[l] : v;
    }
  }
  for (; i < n; ++i) {
    const float v = kAbsolute ? std::fabs(x[i]) : x[i];
    lanes[0] = lanes[0] > v ? lanes[0] : v;
  }
  float m = lanes[0];
  for (int l = 1; l < kLanes; ++l) m = m > lanes[l] ? m : lanes[l];
  return m;
}

// The kernels, written once; each ISA's copy inlines them.
[[gnu::always_inline]] inline void AttendQueryImpl(
    const float* q, const float* k, const float* v, const int64_t* offsets,
    int64_t num_keys, int64_t head_dim, float* scores, float* out) {
  float max_score = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  // Four keys at a time: four independent accumulators instead of one chain.
  for (; j + 4 <= num_keys; j += 4) {
    const float* k0 = k + offsets[j];
    const float* k1 = k + offsets[j + 1];
    const float* k2 = k + offsets[j + 2];
    const float* k3 = k + offsets[j + 3];
    float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
#pragma omp simd reduction(+ : d0, d1, d2, d3)
    for (int64_t c = 0; c < head_dim; ++c) {
      d0 += q[c] * k0[c];
      d1 += q[c] * k1[c];
      d2 += q[c] * k2[c];
      d3 += q[c] * k3[c];
    }
    scores[j] = d0;
    scores[j + 1] = d1;
    scores[j + 2] = d2;
    scores[j + 3] = d3;
    max_score = std::max({max_score, d0, d1, d2, d3});
  }
  for (; j < num_keys; ++j) {
    const float* kj = k + offsets[j];
    float d = 0.0f;
#pragma omp simd reduction(+ : d)
    for (int64_t c = 0; c < head_dim; ++c) d += q[c] * kj[c];
    scores[j] = d;
    max_score = std::max(max_score, d);
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < num_keys; ++i) {
    scores[i] = Exp(scores[i] - max_score);
    sum += scores[i];
  }
  const float inv_sum = num_keys > 0 ? 1.0f / sum : 0.0f;
  std::fill(out, out + head_dim, 0.0f);
  j = 0;
  for (; j + 4 <= num_keys; j += 4) {
    const float p0 = scores[j] * inv_sum, p1 = scores[j + 1] * inv_sum;
    const float p2 = scores[j + 2] * inv_sum, p3 = scores[j + 3] * inv_sum;
    const float* v0 = v + offsets[j];
    const float* v1 = v + offsets[j + 1];
    const float* v2 = v + offsets[j + 2];
    const float* v3 = v + offsets[j + 3];
#pragma omp simd
    for (int64_t c = 0; c < head_dim; ++c) {
      out[c] += p0 * v0[c] + p1 * v1[c] + p2 * v2[c] + p3 * v3[c];
    }
  }
  for (; j < num_keys; ++j) {
    const float p = scores[j] * inv_sum;
    const float* vj = v + offsets[j];
#pragma omp simd
    for (int64_t c = 0; c < head_dim; ++c) out[c] += p * vj[c];
  }
}

[[gnu::always_inline]] inline float QuantizeRowImpl(const float* x, int64_t k,
                                                    int8_t* q) {
  const float max_abs = std::max(MaxOf<true>(x, k), 0.0f);
  const float scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
  const float inverse = 1.0f / scale;
#pragma omp simd
  for (int64_t c = 0; c < k; ++c) {
    // A float-to-int cast of NaN or of a value out of range is undefined:
    // a row holding Inf (scale Inf, Inf x 0 = NaN) or NaN gets 0 for NaN and
    // +-127 beyond the range, so the cast always sees [-127.5, 127.5].
    float v = x[c] * inverse;
    v = v == v ? v : 0.0f;
    v = std::fmin(std::fmax(v, -127.0f), 127.0f);
    q[c] =
        static_cast<int8_t>(static_cast<int32_t>(v + std::copysign(0.5f, v)));
  }
  return scale;
}

// One instantiation per activation, so the inner loop has no branch. With
// kInPlace, y holds the int32 products' bits and gets the result over them.
template <Activation kActivation, bool kInPlace>
[[gnu::always_inline]] inline void DequantizeRowImpl(
    const int32_t* products, float row_scale, const float* col_scales,
    const float* bias, float scale, bool accumulate, int64_t n, float* y) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    const int32_t product =
        kInPlace ? std::bit_cast<int32_t>(y[c]) : products[c];
    float v = static_cast<float>(product) * (row_scale * col_scales[c]);
    if (bias != nullptr) v += bias[c];
    v *= scale;
    if constexpr (kActivation == Activation::kSwish) {
      v = v / (1.0f + Exp(-v));
    } else if constexpr (kActivation == Activation::kRelu) {
      v = std::max(v, 0.0f);
    } else if constexpr (kActivation == Activation::kGelu) {
      v = 0.5f * v * (1.0f + std::erf(v * static_cast<float>(M_SQRT1_2)));
    }
    // Not keep * y[c] + v: a fresh buffer may hold NaNs.
    if constexpr (kInPlace) {
      y[c] = v;
    } else {
      y[c] = accumulate ? y[c] + v : v;
    }
  }
}

template <bool kInPlace>
[[gnu::always_inline]] inline void DequantizeRowDispatch(
    Activation activation, const int32_t* products, float row_scale,
    const float* col_scales, const float* bias, float scale, bool accumulate,
    int64_t n, float* y) {
  switch (activation) {
    case Activation::kNone:
      return DequantizeRowImpl<Activation::kNone, kInPlace>(
          products, row_scale, col_scales, bias, scale, accumulate, n, y);
    case Activation::kSwish:
      return DequantizeRowImpl<Activation::kSwish, kInPlace>(
          products, row_scale, col_scales, bias, scale, accumulate, n, y);
    case Activation::kRelu:
      return DequantizeRowImpl<Activation::kRelu, kInPlace>(
          products, row_scale, col_scales, bias, scale, accumulate, n, y);
    case Activation::kGelu:
      return DequantizeRowImpl<Activation::kGelu, kInPlace>(
          products, row_scale, col_scales, bias, scale, accumulate, n, y);
  }
}

[[gnu::always_inline]] inline float LogSumExpImpl(const float* x, int64_t n,
                                                  float* max) {
  const float m = MaxOf<false>(x, n);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < n; ++c) sum += Exp(x[c] - m);
  *max = m;
  return std::log(sum);
}

[[gnu::always_inline]] inline int64_t FindAtLeastImpl(const float* x, int64_t n,
                                                      float threshold) {
  constexpr int kBlock = 16;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    int hits = 0;
#pragma omp simd reduction(+ : hits)
    for (int l = 0; l < kBlock; ++l) hits += x[i + l] >= threshold ? 1 : 0;
    if (hits > 0) break;
  }
  for (; i < n; ++i) {
    if (x[i] >= threshold) return i;
  }
  return n;
}

// The same kernels compiled for one ISA each.
struct KernelTable {
  const char* isa;
  void (*attend_query)(const float*, const float*, const float*, const int64_t*,
                       int64_t, int64_t, float*, float*);
  float (*quantize_row)(const float*, int64_t, int8_t*);
  void (*dequantize_row)(Activation, const int32_t*, float, const float*,
                         const float*, float, bool, int64_t, float*);
  void (*dequantize_row_in_place)(Activation, float, const float*, const float*,
                                  float, int64_t, float*);
  float (*log_sum_exp)(const float*, int64_t, float*);
  int64_t (*find_at_least)(const float*, int64_t, float);
};

#define TS_KERNELS_FOR_ISA(suffix, target_attribute)                          \
  target_attribute void AttendQuery##suffix(                                  \
      const float* q, const float* k, const float* v, const int64_t* offsets, \
      int64_t num_keys, int64_t head_dim, float* scores, float* out) {        \
    AttendQueryImpl(q, k, v, offsets, num_keys, head_dim, scores, out);       \
  }                                                                           \
  target_attribute float QuantizeRow##suffix(const float* x, int64_t k,       \
                                             int8_t* q) {                     \
    return QuantizeRowImpl(x, k, q);                                          \
  }                                                                           \
  target_attribute void DequantizeRow##suffix(                                \
      Activation activation, const int32_t* products, float row_scale,        \
      const float* col_scales, const float* bias, float scale,                \
      bool accumulate, int64_t n, float* y) {                                 \
    DequantizeRowDispatch<false>(activation, products, row_scale, col_scales, \
                                 bias, scale, accumulate, n, y);              \
  }                                                                           \
  target_attribute void DequantizeRowInPlace##suffix(                         \
      Activation activation, float row_scale, const float* col_scales,        \
      const float* bias, float scale, int64_t n, float* y) {                  \
    DequantizeRowDispatch<true>(activation, nullptr, row_scale, col_scales,   \
                                bias, scale, false, n, y);                    \
  }                                                                           \
  target_attribute float LogSumExp##suffix(const float* x, int64_t n,         \
                                           float* max) {                      \
    return LogSumExpImpl(x, n, max);                                          \
  }                                                                           \
  target_attribute int64_t FindAtLeast##suffix(const float* x, int64_t n,     \
                                               float threshold) {             \
    return FindAtLeastImpl(x, n, threshold);                                  \
  }

TS_KERNELS_FOR_ISA(
    Avx512,
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))))
TS_KERNELS_FOR_ISA(Avx2, __attribute__((target("avx2,fma"))))
TS_KERNELS_FOR_ISA(Baseline, )
#undef TS_KERNELS_FOR_ISA

constexpr KernelTable kAvx512 = {"avx512",
                                 AttendQueryAvx512,
                                 QuantizeRowAvx512,
                                 DequantizeRowAvx512,
                                 DequantizeRowInPlaceAvx512,
                                 LogSumExpAvx512,
                                 FindAtLeastAvx512};
constexpr KernelTable kAvx2 = {"avx2",
                               AttendQueryAvx2,
                               QuantizeRowAvx2,
                               DequantizeRowAvx2,
                               DequantizeRowInPlaceAvx2,
                               LogSumExpAvx2,
                               FindAtLeastAvx2};
constexpr KernelTable kBaseline = {"baseline",
                                   AttendQueryBaseline,
                                   QuantizeRowBaseline,
                                   DequantizeRowBaseline,
                                   DequantizeRowInPlaceBaseline,
                                   LogSumExpBaseline,
                                   FindAtLeastBaseline};

// Whether this CPU has exactly the features each copy was compiled with.
bool Supports(const KernelTable& table) {
  __builtin_cpu_init();
  const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (&table == &kAvx2) return avx2;
  if (&table == &kAvx512) {
    return avx2 && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
  }
  return true;
}

std::atomic<const KernelTable*>& Selected() {
  static std::atomic<const KernelTable*> selected = [] {
    for (const KernelTable* table : {&kAvx512, &kAvx2}) {
      if (Supports(*table)) return table;
    }
    return &kBaseline;
  }();
  return selected;
}

const KernelTable& Kernels() {
  return *Selected().load(std::memory_order_relaxed);
}

}  // namespace

const char* IsaName() { return Kernels().isa; }

bool SelectIsaForTesting(std::string_view isa) {
  for (const KernelTable* table : {&kAvx512, &kAvx2, &kBaseline}) {
    if (isa == table->isa && Supports(*table)) {
      Selected().store(table, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

void AttendQuery(const float* q, const float* k, const float* v,
                 const int64_t* offsets, int64_t num_keys, int64_t head_dim,
                 float* scores, float* out) {
  Kernels().attend_query(q, k, v, offsets, num_keys, head_dim, scores, out);
}

float QuantizeRow(const float* x, int64_t k, int8_t* q) {
  return Kernels().quantize_row(x, k, q);
}

void DequantizeRow(Activation activation, const int32_t* products,
                   float row_scale, const float* col_scales, const float* bias,
                   float scale, bool accumulate, int64_t n, float* y) {
  Kernels().dequantize_row(activation, products, row_scale, col_scales, bias,
                           scale, accumulate, n, y);
}

void DequantizeRowInPlace(Activation activation, float row_scale,
                          const float* col_scales, const float* bias,
                          float scale, int64_t n, float* y) {
  Kernels().dequantize_row_in_place(activation, row_scale, col_scales, bias,
                                    scale, n, y);
}

float LogSumExp(const float* x, int64_t n, float* max) {
  return Kernels().log_sum_exp(x, n, max);
}

int64_t FindAtLeast(const float* x, int64_t n, float threshold) {
  return Kernels().find_at_least(x, n, threshold);
}

}  // namespace ts::core::ops::kernels
