// The engine's own inner loops (the ones oneDNN has no primitive for):
// attention over a KV cache, int8 (de)quantization, log-sum-exp and the scan
// of a top-k. The build is portable (no -march), so each kernel is compiled
// three times, for AVX-512 (F, BW, DQ, VL), AVX2 + FMA and the x86-64
// baseline (SSE2), and the first one this CPU supports is chosen once at run
// time, as oneDNN picks its ISA. All pointers are to fp32 row-major buffers
// unless typed otherwise; nothing is checked here (the ops own the shapes).
#ifndef TRANSFORMER_SERVING_CORE_OPS_KERNELS_H_
#define TRANSFORMER_SERVING_CORE_OPS_KERNELS_H_

#include <cstdint>
#include <string_view>

#include "core/ops/ops.h"

namespace ts::core::ops::kernels {

// The instruction set the kernels run with here: "avx512", "avx2" or
// "baseline".
const char* IsaName();

// Makes every later call use the copy for `isa` ("avx512", "avx2",
// "baseline") if this CPU has it, so tests can check each copy; returns
// false (and changes nothing) otherwise. Not for use while kernels run.
bool SelectIsaForTesting(std::string_view isa);

// One query of scaled dot-product attention: out[head_dim] = sum_j
// softmax_j(q . k_j) v_j over num_keys keys, where key j is the head_dim
// floats at k + offsets[j] and its value those at v + offsets[j]. `scores`
// is scratch of num_keys floats; on return it holds exp(q . k_j - max_j), the
// unnormalized softmax weights (ops::Attention reads them for its `probs`).
// With no keys, out is zeros.
void AttendQuery(const float* q, const float* k, const float* v,
                 const int64_t* offsets, int64_t num_keys, int64_t head_dim,
                 float* scores, float* out);

// Symmetric int8 quantization of one row x[k]: returns scale = max|x| / 127
// (1 for an all-zero row) and writes q[c] = x[c] / scale rounded half away
// from zero, |q| <= 127. Never undefined on non-finite input: NaN values
// give 0 and values beyond +-127 x scale give +-127 (a row with Inf: scale
// Inf, finite values 0); the caller sees the non-finite scale.
float QuantizeRow(const float* x, int64_t k, int8_t* q);

// One row of the int8 matmul epilogue: y[c] = act((products[c] * row_scale *
// col_scales[c] + bias[c]) * scale), added to y[c] when `accumulate`.
// bias may be nullptr.
void DequantizeRow(Activation activation, const int32_t* products,
                   float row_scale, const float* col_scales, const float* bias,
                   float scale, bool accumulate, int64_t n, float* y);

// DequantizeRow where y[n] holds the int32 products (their bits, as oneDNN
// wrote them there) and gets the result in their place; no accumulation.
void DequantizeRowInPlace(Activation activation, float row_scale,
                          const float* col_scales, const float* bias,
                          float scale, int64_t n, float* y);

// The log-softmax normalizer of x[n] (n >= 1, at least one entry finite):
// sets *max = max(x) and returns log(sum_c exp(x[c] - *max)), so that
// log_softmax(x)[c] = (x[c] - *max) - returned, as torch computes it.
float LogSumExp(const float* x, int64_t n, float* max);

// The first index i < n with x[i] >= threshold, or n: the scan of a top-k
// over a vocabulary row, where few values beat the k-th best so far.
int64_t FindAtLeast(const float* x, int64_t n, float threshold);

}  // namespace ts::core::ops::kernels

#endif  // TRANSFORMER_SERVING_CORE_OPS_KERNELS_H_
