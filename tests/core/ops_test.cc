// Each op of core/ops against a plain-loop reference (computed in double) on
// seeded random inputs; the tolerance of each case is written next to it.
#include "core/ops/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ops/execution_context.h"
#include "core/ops/matmul.h"
#include "gtest/gtest.h"

namespace ts::core::ops {
namespace {

std::vector<float> RandomVector(size_t size, uint32_t seed, float low = -1.0f,
                                float high = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> values(size);
  for (float& v : values) v = dist(rng);
  return values;
}

double ApplyActivation(Activation activation, double x) {
  switch (activation) {
    case Activation::kNone:
      return x;
    case Activation::kSwish:
      return x / (1.0 + std::exp(-x));
    case Activation::kRelu:
      return x > 0.0 ? x : 0.0;
    case Activation::kGelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  }
  return x;
}

const char* ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kNone:
      return "None";
    case Activation::kSwish:
      return "Swish";
    case Activation::kRelu:
      return "Relu";
    case Activation::kGelu:
      return "Gelu";
  }
  return "?";
}

// ---------------------------------------------------------------- Linear

struct LinearShape {
  int64_t m, k, n;
  double tolerance;  // max |y - reference|, inputs in [-1, 1]
};

// Shapes, with the tolerance next to each: fp32 dot products of length K.
constexpr LinearShape kLinearShapes[] = {
    {1, 16, 8, 1e-5},   // one row (a decoding step)
    {3, 64, 33, 2e-5},  // odd N
    {7, 256, 100, 5e-5},
    {20, 512, 130, 1e-4},  // the K of a base model's d_model
};

struct LinearCase {
  LinearShape shape;
  bool bias;
  Activation activation;
  float scale;
  bool accumulate;
};

std::vector<LinearCase> AllLinearCases() {
  std::vector<LinearCase> cases;
  for (const LinearShape& shape : kLinearShapes) {
    for (Activation activation : {Activation::kNone, Activation::kSwish,
                                  Activation::kRelu, Activation::kGelu}) {
      for (bool bias : {false, true}) {
        for (float scale : {1.0f, 0.125f}) {
          for (bool accumulate : {false, true}) {
            cases.push_back({shape, bias, activation, scale, accumulate});
          }
        }
      }
    }
  }
  return cases;
}

void PrintTo(const LinearCase& c, std::ostream* os) {
  *os << "M=" << c.shape.m << " K=" << c.shape.k << " N=" << c.shape.n << " "
      << ActivationName(c.activation) << " bias=" << c.bias
      << " scale=" << c.scale << " accumulate=" << c.accumulate;
}

class LinearTest : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearTest, MatchesLoopReference) {
  const LinearCase& c = GetParam();
  const auto [m, k, n, tolerance] = c.shape;
  const std::vector<float> x = RandomVector(m * k, 1);
  const std::vector<float> weight = RandomVector(n * k, 2);
  const std::vector<float> bias = RandomVector(n, 3);
  const std::vector<float> previous = RandomVector(m * n, 4, -2.0f, 2.0f);

  // oneDNN's own layout (as served) and the plain one must agree with it.
  for (const auto& packed :
       {PackedWeights::Pack(weight.data(), n, k, ComputeType::kFloat32),
        PackedWeights::PackPlain(weight.data(), n, k, ComputeType::kFloat32)}) {
    SCOPED_TRACE(packed->packed() ? "packed" : "plain");
    std::vector<float> y = previous;
    ExecutionContext ctx;
    Linear(ctx, x.data(), m, *packed, c.bias ? bias.data() : nullptr, y.data(),
           c.activation, c.scale, c.accumulate);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = c.bias ? bias[j] : 0.0;
        for (int64_t p = 0; p < k; ++p) {
          sum += static_cast<double>(x[i * k + p]) * weight[j * k + p];
        }
        double expected = ApplyActivation(c.activation, sum * c.scale);
        if (c.accumulate) expected += previous[i * n + j];
        ASSERT_NEAR(y[i * n + j], expected, tolerance)
            << "row " << i << " col " << j;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, LinearTest, ::testing::ValuesIn(AllLinearCases()),
                         [](const ::testing::TestParamInfo<LinearCase>& info) {
                           const LinearCase& c = info.param;
                           return absl::StrCat(
                               "M", c.shape.m, "K", c.shape.k, "N", c.shape.n,
                               "_", ActivationName(c.activation),
                               c.bias ? "_Bias" : "",
                               c.scale != 1.0f ? "_Scaled" : "",
                               c.accumulate ? "_Accumulate" : "");
                         });

// ------------------------------------------------------------- LayerNorm

struct LayerNormCase {
  const char* name;
  int64_t m, d;
  float offset;      // added to inputs in [-1, 1]: a mean far from 0
  double tolerance;  // max |y - reference|
};

constexpr LayerNormCase kLayerNormCases[] = {
    {"OneRow", 1, 8, 0.0f, 1e-5},
    {"OddDim", 5, 7, 3.0f, 1e-5},
    {"DModel256", 9, 256, -2.0f, 2e-5},
    {"DModel512", 3, 512, 10.0f, 5e-5},
};

class LayerNormTest : public ::testing::TestWithParam<LayerNormCase> {};

TEST_P(LayerNormTest, NormalizesInPlaceLikeTorch) {
  const LayerNormCase& c = GetParam();
  constexpr float kEps = 1e-5f;
  std::vector<float> x = RandomVector(c.m * c.d, 11);
  for (float& v : x) v += c.offset;
  const std::vector<float> gamma = RandomVector(c.d, 12, 0.5f, 1.5f);
  const std::vector<float> beta = RandomVector(c.d, 13, -0.5f, 0.5f);
  const std::vector<float> input = x;

  ExecutionContext ctx;
  LayerNorm(ctx, x.data(), c.m, c.d, gamma.data(), beta.data(), kEps);

  for (int64_t i = 0; i < c.m; ++i) {
    double mean = 0.0;
    for (int64_t j = 0; j < c.d; ++j) mean += input[i * c.d + j];
    mean /= c.d;
    double var = 0.0;
    for (int64_t j = 0; j < c.d; ++j) {
      const double centered = input[i * c.d + j] - mean;
      var += centered * centered;
    }
    var /= c.d;  // biased variance, as torch.nn.LayerNorm
    for (int64_t j = 0; j < c.d; ++j) {
      const double expected =
          (input[i * c.d + j] - mean) / std::sqrt(var + kEps) * gamma[j] +
          beta[j];
      ASSERT_NEAR(x[i * c.d + j], expected, c.tolerance)
          << "row " << i << " col " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, LayerNormTest,
                         ::testing::ValuesIn(kLayerNormCases),
                         [](const auto& info) { return info.param.name; });

// ------------------------------------------------------------ LogSoftmax

struct LogSoftmaxCase {
  const char* name;
  int64_t m, n;
  float magnitude;   // inputs in [-magnitude, magnitude]
  double tolerance;  // max |y - reference| and |sum(exp(y)) - 1|
};

constexpr LogSoftmaxCase kLogSoftmaxCases[] = {
    {"Small", 1, 10, 1.0f, 1e-5},
    {"Batch", 4, 37, 5.0f, 1e-5},
    {"LargeLogits", 3, 100, 80.0f, 1e-4},  // exp would overflow without
                                           // max-subtraction
    {"DemoVocab", 2, 8001, 10.0f, 1e-4},
    {"OpusVocab", 1, 65001, 10.0f, 2e-4},
};

class LogSoftmaxTest : public ::testing::TestWithParam<LogSoftmaxCase> {};

TEST_P(LogSoftmaxTest, MatchesReferenceAndNormalizes) {
  const LogSoftmaxCase& c = GetParam();
  const std::vector<float> x =
      RandomVector(c.m * c.n, 21, -c.magnitude, c.magnitude);
  std::vector<float> y(c.m * c.n, 123.0f);
  ExecutionContext ctx;
  LogSoftmax(ctx, x.data(), c.m, c.n, y.data());

  for (int64_t i = 0; i < c.m; ++i) {
    const float* row = x.data() + i * c.n;
    double max_value = row[0];
    for (int64_t j = 0; j < c.n; ++j)
      max_value = std::max<double>(max_value, row[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < c.n; ++j) sum += std::exp(row[j] - max_value);
    const double log_sum = max_value + std::log(sum);
    double exp_sum = 0.0;
    for (int64_t j = 0; j < c.n; ++j) {
      const float value = y[i * c.n + j];
      ASSERT_NEAR(value, row[j] - log_sum, c.tolerance)
          << "row " << i << " col " << j;
      exp_sum += std::exp(static_cast<double>(value));
    }
    EXPECT_NEAR(exp_sum, 1.0, c.tolerance) << "row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, LogSoftmaxTest,
                         ::testing::ValuesIn(kLogSoftmaxCases),
                         [](const auto& info) { return info.param.name; });

// ------------------------------------------------------------- Attention

struct AttentionCase {
  const char* name;
  int64_t batch, query_len, num_heads, head_dim, capacity;
  int64_t q_stride_extra;  // q_stride = H * head_dim + this (packed q|k|v rows)
  std::vector<int> key_lengths;  // per kv row
  std::vector<int> kv_rows;      // empty: identity
  bool causal;
  int64_t past;
  double tolerance;  // max |out - reference|
};

const std::vector<AttentionCase>& AttentionCases() {
  static const auto* cases = new std::vector<AttentionCase>{
      // Padded sources: keys at j >= key_lengths[n] (filled with large values)
      // are masked.
      {"NonCausalPadded", 3, 5, 2, 8, 7, 0, {7, 4, 1}, {}, false, 0, 1e-5},
      {"NonCausalOneHead", 2, 3, 1, 16, 5, 0, {5, 2}, {}, false, 0, 1e-5},
      // Decoder self-attention over a whole prefix, q inside packed q|k|v rows.
      {"CausalNoPast", 2, 6, 2, 4, 6, 16, {6, 6}, {}, true, 0, 1e-5},
      // A chunk of 2 positions after 3 cached ones; capacity past the keys.
      {"CausalWithPast", 2, 2, 2, 4, 8, 16, {5, 5}, {}, true, 3, 1e-5},
      // One incremental step at position 4.
      {"CausalOneStep", 3, 1, 4, 8, 10, 64, {5, 5, 5}, {}, true, 4, 1e-5},
      // Padding and the causal mask together: the shorter bound wins.
      {"CausalPadded", 2, 4, 2, 4, 6, 0, {6, 2}, {}, true, 1, 1e-5},
      // Beams of two sources share cross-attention keys: rows 0,1 -> 0, rows
      // 2,3 -> 1.
      {"KvRowsBeams", 4, 1, 2, 8, 6, 0, {6, 3}, {0, 0, 1, 1}, false, 0, 1e-5},
      {"KvRowsShuffled", 3, 4, 2, 4, 5, 0, {2, 5}, {1, 0, 1}, false, 0, 1e-5},
  };
  return *cases;
}

class AttentionTest : public ::testing::TestWithParam<AttentionCase> {
 protected:
  AttentionShape Shape() const {
    const AttentionCase& c = GetParam();
    AttentionShape shape;
    shape.batch = c.batch;
    shape.query_len = c.query_len;
    shape.num_heads = c.num_heads;
    shape.head_dim = c.head_dim;
    shape.capacity = c.capacity;
    shape.q_stride = c.num_heads * c.head_dim + c.q_stride_extra;
    shape.kv_rows = c.kv_rows.empty() ? nullptr : c.kv_rows.data();
    shape.causal = c.causal;
    shape.past = c.past;
    return shape;
  }

  // Keys visible to query t of row n.
  int64_t Visible(int64_t n, int64_t t) const {
    const AttentionCase& c = GetParam();
    const int64_t r = c.kv_rows.empty() ? n : c.kv_rows[n];
    int64_t visible = c.key_lengths[r];
    if (c.causal) visible = std::min(visible, c.past + t + 1);
    return visible;
  }

  // Positions past key_lengths hold stale data: make it loud so that a key
  // that is not masked changes the result.
  void FillPadding(std::vector<float>& k, std::vector<float>& v) const {
    const AttentionCase& c = GetParam();
    for (size_t r = 0; r < c.key_lengths.size(); ++r) {
      for (int64_t h = 0; h < c.num_heads; ++h) {
        for (int64_t j = c.key_lengths[r]; j < c.capacity; ++j) {
          for (int64_t e = 0; e < c.head_dim; ++e) {
            const int64_t index =
                ((r * c.num_heads + h) * c.capacity + j) * c.head_dim + e;
            k[index] = 50.0f;
            v[index] = 1000.0f;
          }
        }
      }
    }
  }
};

// Also the softmax weights the optional `probs` output receives (what
// cross-attention recording reads): the reference's weights over the visible
// keys, 0 over the rest of the capacity.
TEST_P(AttentionTest, MatchesLoopReference) {
  const AttentionCase& c = GetParam();
  AttentionShape shape = Shape();
  std::vector<float> probs(c.batch * c.query_len * c.num_heads * c.capacity,
                           -7.0f);
  shape.probs = probs.data();
  const int64_t d_model = c.num_heads * c.head_dim;
  const int64_t kv_batch = static_cast<int64_t>(c.key_lengths.size());
  const std::vector<float> q =
      RandomVector(c.batch * c.query_len * shape.q_stride, 31);
  std::vector<float> k =
      RandomVector(kv_batch * c.num_heads * c.capacity * c.head_dim, 32);
  std::vector<float> v = RandomVector(k.size(), 33);
  FillPadding(k, v);

  std::vector<float> out(c.batch * c.query_len * d_model, -7.0f);
  Attention(shape, q.data(), k.data(), v.data(), c.key_lengths.data(),
            out.data());

  for (int64_t n = 0; n < c.batch; ++n) {
    const int64_t r = c.kv_rows.empty() ? n : c.kv_rows[n];
    for (int64_t h = 0; h < c.num_heads; ++h) {
      for (int64_t t = 0; t < c.query_len; ++t) {
        const int64_t visible = Visible(n, t);
        const float* q_vec =
            &q[(n * c.query_len + t) * shape.q_stride + h * c.head_dim];
        std::vector<double> weights(visible);
        double max_score = -1e300;
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < c.head_dim; ++e) {
            dot += static_cast<double>(q_vec[e]) *
                   k[((r * c.num_heads + h) * c.capacity + j) * c.head_dim + e];
          }
          weights[j] = dot;
          max_score = std::max(max_score, dot);
        }
        double sum = 0.0;
        for (double& w : weights) sum += (w = std::exp(w - max_score));
        for (double& w : weights) w /= sum;
        const float* row_probs =
            &probs[((n * c.query_len + t) * c.num_heads + h) * c.capacity];
        for (int64_t j = 0; j < c.capacity; ++j) {
          ASSERT_NEAR(row_probs[j], j < visible ? weights[j] : 0.0, 1e-6)
              << "row " << n << " head " << h << " query " << t << " key " << j;
        }
        for (int64_t e = 0; e < c.head_dim; ++e) {
          double expected = 0.0;
          for (int64_t j = 0; j < visible; ++j) {
            expected +=
                weights[j] *
                v[((r * c.num_heads + h) * c.capacity + j) * c.head_dim + e];
          }
          ASSERT_NEAR(out[(n * c.query_len + t) * d_model + h * c.head_dim + e],
                      expected, c.tolerance)
              << "row " << n << " head " << h << " query " << t << " dim " << e;
        }
      }
    }
  }
}

// With every visible value vector all ones (and masked ones 1000), the output
// is the sum of the attention weights: 1 over the visible keys and nothing
// from the masked ones.
TEST_P(AttentionTest, WeightsSumToOneOverVisibleKeys) {
  const AttentionCase& c = GetParam();
  const AttentionShape shape = Shape();
  const int64_t d_model = c.num_heads * c.head_dim;
  const std::vector<float> q =
      RandomVector(c.batch * c.query_len * shape.q_stride, 34, -3.0f, 3.0f);
  std::vector<float> k = RandomVector(
      c.key_lengths.size() * c.num_heads * c.capacity * c.head_dim, 35);
  std::vector<float> v(k.size(), 1.0f);
  FillPadding(k, v);
  std::vector<float> out(c.batch * c.query_len * d_model, -7.0f);
  Attention(shape, q.data(), k.data(), v.data(), c.key_lengths.data(),
            out.data());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], 1.0f, 1e-5)
        << "element " << i;  // fp32 sum of <= 10 weights
  }
}

// Query rows do not interact: row n alone (batch 1) gives the same output.
TEST_P(AttentionTest, RowsAreIndependent) {
  const AttentionCase& c = GetParam();
  AttentionShape shape = Shape();
  const int64_t d_model = c.num_heads * c.head_dim;
  const std::vector<float> q =
      RandomVector(c.batch * c.query_len * shape.q_stride, 36);
  std::vector<float> k = RandomVector(
      c.key_lengths.size() * c.num_heads * c.capacity * c.head_dim, 37);
  std::vector<float> v = RandomVector(k.size(), 38);
  std::vector<float> all(c.batch * c.query_len * d_model);
  Attention(shape, q.data(), k.data(), v.data(), c.key_lengths.data(),
            all.data());
  const int64_t n = c.batch - 1;
  const int kv_row = c.kv_rows.empty() ? static_cast<int>(n) : c.kv_rows[n];
  shape.batch = 1;
  shape.kv_rows = &kv_row;
  std::vector<float> one(c.query_len * d_model);
  Attention(shape, q.data() + n * c.query_len * shape.q_stride, k.data(),
            v.data(), c.key_lengths.data(), one.data());
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i], all[n * c.query_len * d_model + i])
        << i;  // the same loop: exact
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, AttentionTest,
                         ::testing::ValuesIn(AttentionCases()),
                         [](const auto& info) { return info.param.name; });

// ------------------------------------------------------ ExecutionContext

TEST(ExecutionContextTest, ReusesPrimitivesForTheSameShape) {
  ExecutionContext ctx;
  EXPECT_EQ(ctx.num_primitives(), 0u);
  const int64_t m = 4, k = 16, n = 8;
  const std::vector<float> weight = RandomVector(n * k, 51);
  const auto packed =
      PackedWeights::Pack(weight.data(), n, k, ComputeType::kFloat32);
  const std::vector<float> bias = RandomVector(n, 52);
  const std::vector<float> gamma = RandomVector(n, 53, 0.5f, 1.5f);
  const std::vector<float> beta = RandomVector(n, 54);

  auto run_all = [&](uint32_t seed, std::vector<float>* linear_out,
                     std::vector<float>* log_probs) {
    const std::vector<float> x = RandomVector(m * k, seed);
    linear_out->assign(m * n, 0.0f);
    Linear(ctx, x.data(), m, *packed, bias.data(), linear_out->data(),
           Activation::kSwish);
    LayerNorm(ctx, linear_out->data(), m, n, gamma.data(), beta.data(), 1e-5f);
    log_probs->assign(m * n, 0.0f);
    LogSoftmax(ctx, linear_out->data(), m, n, log_probs->data());
  };

  std::vector<float> first_linear, first_log_probs;
  run_all(60, &first_linear, &first_log_probs);
  const size_t after_first = ctx.num_primitives();
  EXPECT_EQ(after_first, 3u);  // one matmul, one layer norm, one log-softmax

  // Same shapes, other buffers and values: no new primitive, and the cached
  // ones compute on the new buffers (not the ones they were created with).
  std::vector<float> second_linear, second_log_probs;
  run_all(61, &second_linear, &second_log_probs);
  EXPECT_EQ(ctx.num_primitives(), after_first);
  EXPECT_NE(first_linear, second_linear);

  // Results of a cached primitive equal those of a fresh context.
  ExecutionContext fresh;
  const std::vector<float> x = RandomVector(m * k, 61);
  std::vector<float> expected(m * n);
  Linear(fresh, x.data(), m, *packed, bias.data(), expected.data(),
         Activation::kSwish);
  LayerNorm(fresh, expected.data(), m, n, gamma.data(), beta.data(), 1e-5f);
  EXPECT_EQ(second_linear, expected);

  // Another shape, activation or accumulate flag is another primitive.
  std::vector<float> y((m + 1) * n);
  const std::vector<float> x2 = RandomVector((m + 1) * k, 62);
  Linear(ctx, x2.data(), m + 1, *packed, bias.data(), y.data(),
         Activation::kSwish);
  EXPECT_EQ(ctx.num_primitives(), after_first + 1);
  Linear(ctx, x2.data(), m + 1, *packed, bias.data(), y.data(),
         Activation::kRelu);
  EXPECT_EQ(ctx.num_primitives(), after_first + 2);
  Linear(ctx, x2.data(), m + 1, *packed, bias.data(), y.data(),
         Activation::kRelu, 1.0f, /*accumulate=*/true);
  EXPECT_EQ(ctx.num_primitives(), after_first + 3);
  Linear(ctx, x2.data(), m + 1, *packed, bias.data(), y.data(),
         Activation::kRelu, 1.0f, /*accumulate=*/true);
  EXPECT_EQ(ctx.num_primitives(), after_first + 3);
}

// bf16 matmul against an fp64 loop over the bf16-rounded inputs: the only
// error left is fp32 accumulation order, so 1e-4 relative holds.
TEST(LinearBf16Test, MatchesLoopOverRoundedInputs) {
  if (!BFloat16MatmulSupported()) GTEST_SKIP() << "no bf16 matmul on this CPU";
  ExecutionContext ctx;
  const int64_t m = 5, k = 96, n = 40;
  const std::vector<float> x = RandomVector(m * k, 41);
  const std::vector<float> weight = RandomVector(n * k, 42);
  const std::vector<float> bias = RandomVector(n, 43);
  const std::vector<uint16_t> x16 = ToBFloat16(x.data(), m * k);
  const std::vector<uint16_t> w16 = ToBFloat16(weight.data(), n * k);
  auto widen = [](uint16_t b) {
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  };
  std::vector<float> y(m * n);
  const auto packed =
      PackedWeights::Pack(weight.data(), n, k, ComputeType::kBFloat16);
  Linear(ctx, x.data(), m, *packed, bias.data(), y.data(), Activation::kSwish);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias[j];
      for (int64_t c = 0; c < k; ++c) {
        acc +=
            static_cast<double>(widen(x16[i * k + c])) * widen(w16[j * k + c]);
      }
      const double expected = acc / (1.0 + std::exp(-acc));
      EXPECT_NEAR(y[i * n + j], expected, 1e-4 * (1.0 + std::fabs(expected)))
          << i << "," << j;
    }
  }
  // Rounding is to nearest even: 1 + 2^-8 is halfway and rounds down to 1.
  const float halfway = 1.0f + 1.0f / 256.0f;
  EXPECT_EQ(ToBFloat16(&halfway, 1)[0], 0x3f80);
}

// int8 matmul against a loop over the same quantization (per output channel
// weight scales, per row input scales): only fp32 rounding of the epilogue
// differs. Also checks the quantized product stays near the fp32 one.
TEST(LinearInt8Test, MatchesLoopOverQuantizedInputs) {
  ExecutionContext ctx;
  const int64_t m = 6, k = 80, n = 24;
  const std::vector<float> x = RandomVector(m * k, 51);
  const std::vector<float> weight = RandomVector(n * k, 52);
  const std::vector<float> bias = RandomVector(n, 53);
  // The documented quantization, done here independently.
  std::vector<int32_t> q_values(n * k);
  std::vector<double> q_scales(n);
  for (int64_t j = 0; j < n; ++j) {
    float max_abs = 0.0f;
    for (int64_t c = 0; c < k; ++c)
      max_abs = std::max(max_abs, std::fabs(weight[j * k + c]));
    q_scales[j] = max_abs / 127.0f;
    for (int64_t c = 0; c < k; ++c) {
      q_values[j * k + c] = static_cast<int32_t>(
          std::lrint(weight[j * k + c] / (max_abs / 127.0f)));
    }
  }
  const auto packed =
      PackedWeights::Pack(weight.data(), n, k, ComputeType::kInt8);
  // Accumulating (products in a scratch) and not (products converted in
  // place in the output).
  for (bool accumulate : {true, false}) {
    SCOPED_TRACE(accumulate ? "accumulate" : "overwrite");
    const float base = accumulate ? 0.5f : 0.0f;
    std::vector<float> y(m * n, 0.5f);
    Linear(ctx, x.data(), m, *packed, bias.data(), y.data(), Activation::kRelu,
           1.0f, accumulate);
    for (int64_t i = 0; i < m; ++i) {
      float max_abs = 0.0f;
      for (int64_t c = 0; c < k; ++c)
        max_abs = std::max(max_abs, std::fabs(x[i * k + c]));
      const float row_scale = max_abs / 127.0f;
      for (int64_t j = 0; j < n; ++j) {
        int64_t acc = 0;
        double exact = bias[j];
        for (int64_t c = 0; c < k; ++c) {
          acc += static_cast<int64_t>(std::lrint(x[i * k + c] / row_scale)) *
                 q_values[j * k + c];
          exact += static_cast<double>(x[i * k + c]) * weight[j * k + c];
        }
        const double expected =
            base +
            std::max(0.0, acc * double{row_scale} * q_scales[j] + bias[j]);
        EXPECT_NEAR(y[i * n + j], expected, 1e-4 * (1.0 + std::fabs(expected)));
        // Quantization error bound: ~k * 2 * (half a step of x and w).
        EXPECT_NEAR(y[i * n + j], base + std::max(0.0, exact), 0.05);
      }
    }
  }
}

// ReadRow gives back row r of the weight as the matmul sees it, in oneDNN's
// layout (blocked, padded: N and K not multiples of the blocks) and the plain
// one: fp32 exactly, bf16 rounded, int8 within half a quantization step.
TEST(PackedWeightsTest, ReadRowReturnsTheStoredRow) {
  const int64_t n = 131, k = 80;
  const std::vector<float> weight = RandomVector(n * k, 71);
  std::vector<ComputeType> types = {ComputeType::kFloat32, ComputeType::kInt8};
  if (BFloat16MatmulSupported()) types.push_back(ComputeType::kBFloat16);
  for (ComputeType type : types) {
    for (bool plain : {false, true}) {
      SCOPED_TRACE(absl::StrCat("type ", static_cast<int>(type),
                                plain ? " plain" : " packed"));
      const auto packed =
          plain ? PackedWeights::PackPlain(weight.data(), n, k, type)
                : PackedWeights::Pack(weight.data(), n, k, type);
      EXPECT_EQ(packed->packed(), !plain);
      EXPECT_EQ(packed->rows(), n);
      EXPECT_EQ(packed->cols(), k);
      std::vector<float> row(k);
      for (int64_t r = 0; r < n; ++r) {
        packed->ReadRow(r, row.data());
        float max_abs = 0.0f;
        for (int64_t c = 0; c < k; ++c)
          max_abs = std::max(max_abs, std::fabs(weight[r * k + c]));
        for (int64_t c = 0; c < k; ++c) {
          const float w = weight[r * k + c];
          if (type == ComputeType::kFloat32) {
            ASSERT_EQ(row[c], w) << r << "," << c;
          } else if (type == ComputeType::kBFloat16) {
            ASSERT_NEAR(row[c], w, std::fabs(w) / 256.0f) << r << "," << c;
          } else {
            ASSERT_NEAR(row[c], w, max_abs / 127.0f / 2.0f * 1.0001f)
                << r << "," << c;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace ts::core::ops
