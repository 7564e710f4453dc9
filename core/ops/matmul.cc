#include "core/ops/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/ops/kernels.h"

namespace ts::core::ops {
namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

// Rows of the matmul for which PackedWeights asks oneDNN's preferred weight
// layout. oneDNN 2.6's brgemm matmul picks the same layout for 1 to 128 rows
// (checked with ONEDNN_VERBOSE); a few dozen rows is the common batch.
constexpr int64_t kPackRows = 32;

dt WeightsType(ComputeType type) {
  switch (type) {
    case ComputeType::kBFloat16:
      return dt::bf16;
    case ComputeType::kInt8:
      return dt::s8;
    case ComputeType::kFloat32:
      break;
  }
  return dt::f32;
}

// int8 products come out as int32 and are scaled back in Dequantize.
dt OutputType(ComputeType type) {
  return type == ComputeType::kInt8 ? dt::s32 : dt::f32;
}

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

// oneDNN wants non-const handles even for inputs it only reads.
void* Mutable(const void* p) { return const_cast<void*>(p); }

uint16_t RoundToBFloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

// out[i] = RoundToBFloat16(values[i]) for i < n, in parallel when large.
void RoundToBFloat16(const float* values, int64_t n, uint16_t* out) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) out[i] = RoundToBFloat16(values[i]);
}

float BFloat16ToFloat(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

// Offset in elements contributed by index `idx` of dimension `dim` in a
// blocked layout: the block number times the dimension's stride, plus the
// index's digits within the inner blocks (innermost block = lowest digit).
// A layout's element offset is offset0 plus these terms over all dimensions.
int64_t DimOffset(const dnnl_memory_desc_t& md, int dim, int64_t idx) {
  const dnnl_blocking_desc_t& blocking = md.format_desc.blocking;
  int64_t block = 1;
  for (int i = 0; i < blocking.inner_nblks; ++i) {
    if (blocking.inner_idxs[i] == dim) block *= blocking.inner_blks[i];
  }
  int64_t offset = (idx / block) * blocking.strides[dim];
  int64_t rest = idx % block;
  int64_t inner_stride = 1;
  for (int i = blocking.inner_nblks - 1; i >= 0; --i) {
    if (blocking.inner_idxs[i] == dim) {
      offset += (rest % blocking.inner_blks[i]) * inner_stride;
      rest /= blocking.inner_blks[i];
    }
    inner_stride *= blocking.inner_blks[i];
  }
  return offset;
}

// Symmetric per-row quantization of rows[m, k] (kernels::QuantizeRow).
void QuantizeRows(const float* rows, int64_t m, int64_t k, int8_t* q,
                  float* scales) {
#pragma omp parallel for schedule(static) if (m * k >= kMinParallelWork)
  for (int64_t r = 0; r < m; ++r) {
    scales[r] = kernels::QuantizeRow(rows + r * k, k, q + r * k);
  }
}

// y[r, c] = act((products[r, c] * row_scales[r] * col_scales[c] + bias[c]) *
// scale) (+ y[r, c]): the int32 products are in ctx's scratch when
// accumulating, else already in y (in place).
void Dequantize(ExecutionContext& ctx, const PackedWeights& weight, int64_t m,
                const float* bias, Activation activation, float scale,
                bool accumulate, float* y) {
  const int64_t n = weight.rows();
  const int32_t* products = ctx.int32_scratch.data();
  const float* row_scales = ctx.int8_row_scales.data();
  const float* col_scales = weight.scales().data();
#pragma omp parallel for schedule(static) if (m * n >= kMinParallelWork)
  for (int64_t r = 0; r < m; ++r) {
    if (accumulate) {
      kernels::DequantizeRow(activation, products + r * n, row_scales[r],
                             col_scales, bias, scale, true, n, y + r * n);
    } else {
      kernels::DequantizeRowInPlace(activation, row_scales[r], col_scales, bias,
                                    scale, n, y + r * n);
    }
  }
}

// One oneDNN matmul src[m, K] x weight -> dst[m, N] with src and weights in
// the weights' data type, cached per shape; bias, scale, activation and sum
// become post-ops (fp32 and bf16 only: int8 applies them in Dequantize).
void RunMatmul(ExecutionContext& ctx, const void* src, int64_t m,
               const PackedWeights& weight, const float* bias, void* dst,
               Activation activation, float scale, bool accumulate) {
  const int64_t k = weight.cols();
  const int64_t n = weight.rows();
  const dt type = WeightsType(weight.type());
  const memory::desc src_md({m, k}, type, tag::ab);
  const memory::desc bias_md({1, n}, dt::f32, tag::ab);
  const memory::desc dst_md({m, n}, OutputType(weight.type()), tag::ab);
  // The layout of the weights is fixed per (type, k, n, packed) on a CPU.
  const std::string key =
      absl::StrCat("matmul:", static_cast<int>(type), ":", weight.packed(), ":",
                   m, ":", k, ":", n, ":", bias != nullptr, ":",
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
            ? dnnl::matmul::desc(src_md, weight.desc(), bias_md, dst_md)
            : dnnl::matmul::desc(src_md, weight.desc(), dst_md);
    const dnnl::matmul::primitive_desc pd(desc, attr, ctx.engine());
    primitive = &ctx.Insert(key, dnnl::matmul(pd));
  }
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(src_md, ctx.engine(), Mutable(src))},
      {DNNL_ARG_WEIGHTS, memory(weight.desc(), ctx.engine(), weight.data())},
      {DNNL_ARG_DST, memory(dst_md, ctx.engine(), dst)}};
  if (bias != nullptr) {
    args.emplace(DNNL_ARG_BIAS, memory(bias_md, ctx.engine(), Mutable(bias)));
  }
  primitive->execute(ctx.stream(), args);
  ctx.stream().wait();
}

}  // namespace

std::shared_ptr<const PackedWeights> PackedWeights::Pack(
    const float* weight, int64_t n, int64_t k, ComputeType type,
    const std::function<void(int64_t rows)>& source_done) {
  return PackAs(weight, n, k, type, /*plain=*/false, source_done);
}

std::shared_ptr<const PackedWeights> PackedWeights::PackPlain(
    const float* weight, int64_t n, int64_t k, ComputeType type) {
  return PackAs(weight, n, k, type, /*plain=*/true, nullptr);
}

std::shared_ptr<const PackedWeights> PackedWeights::PackAs(
    const float* weight, int64_t n, int64_t k, ComputeType type, bool plain,
    const std::function<void(int64_t rows)>& source_done) {
  std::shared_ptr<PackedWeights> packed(new PackedWeights());
  packed->n_ = n;
  packed->k_ = k;
  packed->type_ = type;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dt weights_type = WeightsType(type);
  // [out, in] row-major is the [K, N] weights matrix in column-major ("ba").
  const memory::desc plain_md({k, n}, weights_type, tag::ba);
  packed->desc_ = plain_md;
  if (!plain) {
    const memory::desc src_md({kPackRows, k}, weights_type, tag::ab);
    const memory::desc any_md({k, n}, weights_type, tag::any);
    const memory::desc dst_md({kPackRows, n}, OutputType(type), tag::ab);
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(src_md, any_md, dst_md), engine);
    // ReadRow understands blocked layouts only (all oneDNN 2.6 CPU matmuls
    // pick one).
    if (pd.weights_desc().data.format_kind == dnnl_blocked) {
      packed->desc_ = pd.weights_desc();
      packed->packed_ = true;
    }
  }
  // The values in the weights type, still [N, K] row-major.
  std::vector<uint16_t> bf16;
  std::vector<int8_t> int8;
  const void* source = weight;
  if (type == ComputeType::kBFloat16) {
    bf16.resize(n * k);
    source = bf16.data();
  } else if (type == ComputeType::kInt8) {
    int8.resize(n * k);
    packed->scales_.resize(n);
    source = int8.data();
  }
  if (source != weight) {
    // A block of rows at a time, each reported done, so that at most one
    // block of the fp32 source need be resident beside the converted copy.
    const int64_t block = std::max<int64_t>(1, (int64_t{1} << 20) / k);
    for (int64_t begin = 0; begin < n; begin += block) {
      const int64_t rows = std::min(block, n - begin);
      if (type == ComputeType::kBFloat16) {
        RoundToBFloat16(weight + begin * k, rows * k, bf16.data() + begin * k);
      } else {
        QuantizeRows(weight + begin * k, rows, k, int8.data() + begin * k,
                     packed->scales_.data() + begin);
      }
      if (source_done) source_done(begin + rows);
    }
  }
  const size_t size = packed->desc_.get_size();
  const size_t alignment = 64;
  packed->data_ =
      std::aligned_alloc(alignment, (size + alignment - 1) & ~(alignment - 1));
  if (packed->data_ == nullptr) throw std::bad_alloc();
  std::memset(packed->data_, 0, size);  // padding, and int8 compensation
  memory from(plain_md, engine, Mutable(source));
  memory to(packed->desc_, engine, packed->data_);
  dnnl::reorder(from, to).execute(stream, from, to);
  stream.wait();
  if (source == weight && source_done) source_done(n);

  const dnnl_memory_desc_t& md = packed->desc_.data;
  packed->col_offsets_.resize(k);
  for (int64_t c = 0; c < k; ++c) {
    packed->col_offsets_[c] = md.offset0 + DimOffset(md, 0, c);
  }
  // Without VNNI oneDNN may store int8 weights pre-multiplied (e.g. by 0.5)
  // against overflow, and undo it in the matmul.
  if (md.extra.flags & dnnl_memory_extra_flag_scale_adjust) {
    packed->stored_scale_ = md.extra.scale_adjust;
  }
  return packed;
}

PackedWeights::~PackedWeights() { std::free(data_); }

int64_t PackedWeights::bytes() const {
  return static_cast<int64_t>(desc_.get_size() + scales_.size() * 4);
}

int64_t PackedWeights::RowOffset(int64_t row) const {
  return DimOffset(desc_.data, 1, row);
}

void PackedWeights::ReadRow(int64_t row, float* out) const {
  const int64_t base = RowOffset(row);
  switch (type_) {
    case ComputeType::kFloat32: {
      const auto* values = static_cast<const float*>(data_) + base;
      for (int64_t c = 0; c < k_; ++c) out[c] = values[col_offsets_[c]];
      break;
    }
    case ComputeType::kBFloat16: {
      const auto* values = static_cast<const uint16_t*>(data_) + base;
      for (int64_t c = 0; c < k_; ++c) {
        out[c] = BFloat16ToFloat(values[col_offsets_[c]]);
      }
      break;
    }
    case ComputeType::kInt8: {
      const auto* values = static_cast<const int8_t*>(data_) + base;
      const float scale = scales_[row] / stored_scale_;
      for (int64_t c = 0; c < k_; ++c) {
        out[c] = static_cast<float>(values[col_offsets_[c]]) * scale;
      }
      break;
    }
  }
}

void Linear(ExecutionContext& ctx, const float* x, int64_t m,
            const PackedWeights& weight, const float* bias, float* y,
            Activation activation, float scale, bool accumulate) {
  const int64_t k = weight.cols();
  const int64_t n = weight.rows();
  const int64_t total = m * k;
  switch (weight.type()) {
    case ComputeType::kFloat32:
      RunMatmul(ctx, x, m, weight, bias, y, activation, scale, accumulate);
      return;
    case ComputeType::kBFloat16: {
      std::vector<uint16_t>& src = ctx.bf16_scratch;
      if (src.size() < static_cast<size_t>(total)) src.resize(total);
      RoundToBFloat16(x, total, src.data());
      RunMatmul(ctx, src.data(), m, weight, bias, y, activation, scale,
                accumulate);
      return;
    }
    case ComputeType::kInt8:
      break;
  }
  std::vector<int8_t>& x8 = ctx.int8_scratch;
  if (x8.size() < static_cast<size_t>(total)) x8.resize(total);
  if (ctx.int8_row_scales.size() < static_cast<size_t>(m)) {
    ctx.int8_row_scales.resize(m);
  }
  // The int32 products go where the output goes (4 bytes each, converted in
  // place), unless the output is to be added to: then to a scratch.
  int32_t* products = nullptr;
  if (accumulate) {
    if (ctx.int32_scratch.size() < static_cast<size_t>(m * n)) {
      ctx.int32_scratch.resize(m * n);
    }
    products = ctx.int32_scratch.data();
  }
  QuantizeRows(x, m, k, x8.data(), ctx.int8_row_scales.data());
  RunMatmul(ctx, x8.data(), m, weight, nullptr,
            accumulate ? static_cast<void*>(products) : static_cast<void*>(y),
            Activation::kNone, 1.0f, false);
  // Dequantize, then the same epilogue as the fp32 post-ops, in order.
  Dequantize(ctx, weight, m, bias, activation, scale, accumulate, y);
}

std::vector<uint16_t> ToBFloat16(const float* values, int64_t n) {
  std::vector<uint16_t> out(n);
  RoundToBFloat16(values, n, out.data());
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

}  // namespace ts::core::ops
