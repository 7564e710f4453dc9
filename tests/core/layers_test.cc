// The layers of core/layers against plain-loop references (double precision)
// on tiny random weights built in memory; tolerances next to each case.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/layers/embeddings.h"
#include "core/layers/feed_forward.h"
#include "core/layers/key_value_blocks.h"
#include "core/layers/linear.h"
#include "core/layers/multi_head_attention.h"
#include "core/layers/transformer_layers.h"
#include "core/model/config.h"
#include "core/model/weights.h"
#include "core/ops/execution_context.h"
#include "gtest/gtest.h"

namespace ts::core {
namespace {

using Matrix = std::vector<double>;  // row-major, shapes given alongside

std::vector<float> RandomVector(size_t size, std::mt19937& rng,
                                float low = -1.0f, float high = 1.0f) {
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> values(size);
  for (float& v : values) v = dist(rng);
  return values;
}

Matrix ToDouble(const std::vector<float>& values) {
  return Matrix(values.begin(), values.end());
}

void ExpectAllNear(const std::vector<float>& actual, const Matrix& expected,
                   double tolerance, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], tolerance) << what << " at " << i;
  }
}

// ------------------------------------------------------ reference loops

// y[m, n] = x[m, k] w[n, k]^T + b[n].
Matrix LinearRef(const Matrix& x, int64_t m, int64_t k, const TensorView& w,
                 const TensorView& b) {
  const int64_t n = w.shape[0];
  Matrix y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = b.data[j];
      for (int64_t p = 0; p < k; ++p) sum += x[i * k + p] * w.data[j * k + p];
      y[i * n + j] = sum;
    }
  }
  return y;
}

void LayerNormRef(Matrix& x, int64_t m, int64_t d, const TensorView& gamma,
                  const TensorView& beta, double eps) {
  for (int64_t i = 0; i < m; ++i) {
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < d; ++j) mean += x[i * d + j];
    mean /= d;
    for (int64_t j = 0; j < d; ++j)
      var += (x[i * d + j] - mean) * (x[i * d + j] - mean);
    var /= d;
    for (int64_t j = 0; j < d; ++j) {
      x[i * d + j] =
          (x[i * d + j] - mean) / std::sqrt(var + eps) * gamma.data[j] +
          beta.data[j];
    }
  }
}

double ActivationRef(const std::string& name, double x) {
  if (name == "relu") return x > 0 ? x : 0.0;
  if (name == "gelu") return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  return x / (1.0 + std::exp(-x));  // swish / silu
}

const TensorView& Get(const Weights& weights, const std::string& name) {
  const TensorView* tensor = weights.Find(name);
  if (tensor == nullptr) {
    ADD_FAILURE() << "no tensor " << name;
    std::abort();  // a reference without its weights cannot run
  }
  return *tensor;
}

// hidden[rows * len, d] + out_proj(MHA(query_input, kv_input)), as
// MarianAttention: q = q_proj(x) * head_dim^-0.5, per head softmax(q k^T) v
// over keys j < key_lengths[kv_row] (and j <= past + t if causal). kv_input is
// [kv_batch, kv_len, d]; kv_rows maps query rows to kv rows (empty: identity).
Matrix AttentionRef(const Weights& w, const std::string& prefix, int64_t d,
                    int64_t heads, const Matrix& query_input, int64_t rows,
                    int64_t len, const Matrix& kv_input, int64_t kv_batch,
                    int64_t kv_len, const std::vector<int>& key_lengths,
                    const std::vector<int>& kv_rows, bool causal, int64_t past,
                    const Matrix& hidden) {
  const int64_t head_dim = d / heads;
  Matrix q =
      LinearRef(query_input, rows * len, d, Get(w, prefix + ".q_proj.weight"),
                Get(w, prefix + ".q_proj.bias"));
  for (double& value : q) value /= std::sqrt(static_cast<double>(head_dim));
  const Matrix k = LinearRef(kv_input, kv_batch * kv_len, d,
                             Get(w, prefix + ".k_proj.weight"),
                             Get(w, prefix + ".k_proj.bias"));
  const Matrix v = LinearRef(kv_input, kv_batch * kv_len, d,
                             Get(w, prefix + ".v_proj.weight"),
                             Get(w, prefix + ".v_proj.bias"));
  Matrix context(rows * len * d, 0.0);
  for (int64_t n = 0; n < rows; ++n) {
    const int64_t r = kv_rows.empty() ? n : kv_rows[n];
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t t = 0; t < len; ++t) {
        int64_t visible = key_lengths[r];
        if (causal) visible = std::min<int64_t>(visible, past + t + 1);
        std::vector<double> p(visible);
        double max_score = -1e300, sum = 0.0;
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < head_dim; ++e) {
            dot += q[(n * len + t) * d + h * head_dim + e] *
                   k[(r * kv_len + j) * d + h * head_dim + e];
          }
          p[j] = dot;
          max_score = std::max(max_score, dot);
        }
        for (double& x : p) sum += (x = std::exp(x - max_score));
        for (int64_t j = 0; j < visible; ++j) {
          p[j] /= sum;
          for (int64_t e = 0; e < head_dim; ++e) {
            context[(n * len + t) * d + h * head_dim + e] +=
                p[j] * v[(r * kv_len + j) * d + h * head_dim + e];
          }
        }
      }
    }
  }
  Matrix out =
      LinearRef(context, rows * len, d, Get(w, prefix + ".out_proj.weight"),
                Get(w, prefix + ".out_proj.bias"));
  for (size_t i = 0; i < out.size(); ++i) out[i] += hidden[i];
  return out;
}

// x + fc2(act(fc1(x))).
Matrix FeedForwardRef(const Weights& w, const std::string& prefix, int64_t d,
                      const std::string& activation, const Matrix& x,
                      int64_t rows) {
  Matrix inner = LinearRef(x, rows, d, Get(w, prefix + ".fc1.weight"),
                           Get(w, prefix + ".fc1.bias"));
  for (double& value : inner) value = ActivationRef(activation, value);
  const int64_t ffn = Get(w, prefix + ".fc1.weight").shape[0];
  Matrix out = LinearRef(inner, rows, ffn, Get(w, prefix + ".fc2.weight"),
                         Get(w, prefix + ".fc2.bias"));
  for (size_t i = 0; i < out.size(); ++i) out[i] += x[i];
  return out;
}

// ------------------------------------------------------ in-memory weights

void AddLinear(Weights& w, const std::string& prefix, int64_t in, int64_t out,
               std::mt19937& rng) {
  const float bound =
      1.0f / std::sqrt(static_cast<float>(in));  // torch's init range
  w.Add(prefix + ".weight", RandomVector(out * in, rng, -bound, bound),
        {out, in});
  w.Add(prefix + ".bias", RandomVector(out, rng, -bound, bound), {out});
}

void AddAttention(Weights& w, const std::string& prefix, int64_t d,
                  std::mt19937& rng) {
  for (const char* proj : {".q_proj", ".k_proj", ".v_proj", ".out_proj"}) {
    AddLinear(w, prefix + proj, d, d, rng);
  }
}

void AddLayerNorm(Weights& w, const std::string& prefix, int64_t d,
                  std::mt19937& rng) {
  w.Add(prefix + ".weight", RandomVector(d, rng, 0.5f, 1.5f), {d});
  w.Add(prefix + ".bias", RandomVector(d, rng, -0.3f, 0.3f), {d});
}

// ----------------------------------------------------------- positions

// Marian's table: column c < ceil(dim/2) is sin(pos / 10000^(2c/dim)), column
// ceil(dim/2) + i is cos(pos / 10000^(2i/dim)).
double PositionFormula(int64_t pos, int64_t c, int64_t dim) {
  const int64_t half = (dim + 1) / 2;
  const bool is_sin = c < half;
  const int64_t i = is_sin ? c : c - half;
  const double angle = pos / std::pow(10000.0, 2.0 * i / dim);
  return is_sin ? std::sin(angle) : std::cos(angle);
}

struct PositionsCase {
  int64_t num_positions, dim;
  double tolerance;  // float rounding of a double
};

class SinusoidalPositionsTest : public ::testing::TestWithParam<PositionsCase> {
};

TEST_P(SinusoidalPositionsTest, MatchesFormula) {
  const auto [num_positions, dim, tolerance] = GetParam();
  const std::vector<float> table = SinusoidalPositions(num_positions, dim);
  ASSERT_EQ(table.size(), static_cast<size_t>(num_positions * dim));
  for (int64_t pos = 0; pos < num_positions; ++pos) {
    for (int64_t c = 0; c < dim; ++c) {
      ASSERT_NEAR(table[pos * dim + c], PositionFormula(pos, c, dim), tolerance)
          << "pos " << pos << " dim " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layers, SinusoidalPositionsTest,
    ::testing::Values(PositionsCase{4, 2, 1e-6}, PositionsCase{64, 16, 1e-6},
                      PositionsCase{512, 256, 1e-6},
                      PositionsCase{30, 7, 1e-6}),  // odd: 4 sin, 3 cos
    [](const auto& info) {
      return absl::StrCat("P", info.param.num_positions, "D", info.param.dim);
    });

TEST(SinusoidalPositionsTest, KnownValues) {
  const std::vector<float> table = SinusoidalPositions(3, 4);
  // pos 0: sin 0 = 0 in the first half, cos 0 = 1 in the second.
  EXPECT_EQ(table[0], 0.0f);
  EXPECT_EQ(table[1], 0.0f);
  EXPECT_EQ(table[2], 1.0f);
  EXPECT_EQ(table[3], 1.0f);
  // pos 1, i = 0: sin(1), cos(1); i = 1: angle 1/100.
  EXPECT_FLOAT_EQ(table[4 + 0], std::sin(1.0f));
  EXPECT_FLOAT_EQ(table[4 + 1], std::sin(0.01f));
  EXPECT_FLOAT_EQ(table[4 + 2], std::cos(1.0f));
  EXPECT_FLOAT_EQ(table[4 + 3], std::cos(0.01f));
}

TEST(SinusoidalPositionsTest, MatchesTheDemoModelTables) {
  auto weights = Weights::Load(TS_DEMO_MODEL_DIR);
  ASSERT_TRUE(weights.ok()) << weights.status();
  for (const char* name : {"model.encoder.embed_positions.weight",
                           "model.decoder.embed_positions.weight"}) {
    const TensorView* stored = weights->Find(name);
    ASSERT_NE(stored, nullptr) << name;
    ASSERT_EQ(stored->shape.size(), 2u);
    const std::vector<float> table =
        SinusoidalPositions(stored->shape[0], stored->shape[1]);
    ASSERT_EQ(table.size(), static_cast<size_t>(stored->numel()));
    for (int64_t i = 0; i < stored->numel(); ++i) {
      ASSERT_NEAR(table[i], stored->data[i], 1e-5) << name << " entry " << i;
    }
  }
}

// ---------------------------------------------------------- embeddings

TEST(EmbeddingsTest, ForwardMatchesLoop) {
  std::mt19937 rng(7);
  const int64_t vocab = 11, dim = 6, max_positions = 12, rows = 2, len = 3,
                past = 4;
  const std::vector<float> tokens = RandomVector(vocab * dim, rng);
  const std::vector<float> positions = SinusoidalPositions(max_positions, dim);
  const std::vector<int> ids = {3, 0, 10, 7, 7, 1};
  Embeddings embeddings{ops::PackedWeights::Pack(tokens.data(), vocab, dim,
                                                 ops::ComputeType::kFloat32),
                        positions.data(), dim, 2.5f};
  std::vector<float> out(rows * len * dim, -1.0f);
  embeddings.Forward(ids.data(), rows, len, past, out.data());
  Matrix expected(out.size());
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t t = 0; t < len; ++t) {
      for (int64_t c = 0; c < dim; ++c) {
        expected[(n * len + t) * dim + c] =
            2.5 * tokens[ids[n * len + t] * dim + c] +
            positions[(past + t) * dim + c];
      }
    }
  }
  ExpectAllNear(out, expected, 1e-6,
                "embeddings");  // one multiply-add in float
}

// Rows read from oneDNN's blocked, padded fp32 layout (ids past the first
// block of 64) equal those of the plain layout.
TEST(EmbeddingsTest, PackedTokensEqualThePlainTable) {
  std::mt19937 rng(8);
  const int64_t vocab = 70, dim = 24, rows = 2, len = 3;
  const std::vector<float> tokens = RandomVector(vocab * dim, rng);
  const std::vector<float> positions = SinusoidalPositions(8, dim);
  const std::vector<int> ids = {69, 0, 64, 7, 63, 1};
  Embeddings table{ops::PackedWeights::PackPlain(tokens.data(), vocab, dim,
                                                 ops::ComputeType::kFloat32),
                   positions.data(), dim, 2.5f};
  Embeddings packed{ops::PackedWeights::Pack(tokens.data(), vocab, dim,
                                             ops::ComputeType::kFloat32),
                    positions.data(), dim, 2.5f};
  ASSERT_TRUE(packed.tokens->packed());
  std::vector<float> expected(rows * len * dim), out(rows * len * dim);
  table.Forward(ids.data(), rows, len, 2, expected.data());
  packed.Forward(ids.data(), rows, len, 2, out.data());
  EXPECT_EQ(out, expected);
}

// -------------------------------------------------- multi-head attention

constexpr int64_t kD = 8;
constexpr int64_t kHeads = 2;
constexpr int64_t kHeadDim = kD / kHeads;
constexpr double kAttentionTolerance = 2e-5;  // fp32 vs double, values O(1)

class MultiHeadAttentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddAttention(weights_, "l", kD, rng_);
    auto loaded = MultiHeadAttention::Load(weights_, "l", kD, kHeads);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    attention_ = *loaded;
    attention_.Pack(ops::ComputeType::kFloat32, AttentionUse::kBoth);
  }

  // Rows [t0, t0 + count) of each of `rows` sequences of x[rows, len, kD].
  static std::vector<float> Slice(const std::vector<float>& x, int64_t rows,
                                  int64_t len, int64_t t0, int64_t count) {
    std::vector<float> out(rows * count * kD);
    for (int64_t n = 0; n < rows; ++n) {
      std::copy_n(x.begin() + (n * len + t0) * kD, count * kD,
                  out.begin() + n * count * kD);
    }
    return out;
  }

  std::mt19937 rng_{17};
  Weights weights_;
  MultiHeadAttention attention_;
  ExecutionContext ctx_;
  AttentionScratch scratch_;
};

TEST_F(MultiHeadAttentionTest, LoadChecksShapes) {
  EXPECT_EQ(attention_.num_heads(), kHeads);
  EXPECT_EQ(attention_.head_dim(), kHeadDim);
  Weights bad;
  AddAttention(bad, "l", kD, rng_);
  bad.Add("l.v_proj.weight", std::vector<float>(kD * (kD + 1)), {kD + 1, kD});
  auto loaded = MultiHeadAttention::Load(bad, "l", kD, kHeads);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("l.v_proj.weight"),
            std::string::npos)
      << loaded.status();
}

struct SelfAttentionCase {
  const char* name;
  int64_t rows, len;
  std::vector<int> key_lengths;
  bool causal;
};

class SelfAttentionTest
    : public MultiHeadAttentionTest,
      public ::testing::WithParamInterface<SelfAttentionCase> {};

TEST_P(SelfAttentionTest, MatchesLoopReference) {
  const SelfAttentionCase& c = GetParam();
  const std::vector<float> x = RandomVector(c.rows * c.len * kD, rng_);
  KeyValueCache cache;
  cache.Resize(c.rows, kHeads, c.len, kHeadDim);
  std::vector<float> hidden = x;
  attention_.SelfAttention(ctx_, hidden.data(), c.rows, c.len, 0, &cache,
                           c.key_lengths.data(), c.causal, &scratch_);
  const Matrix expected = AttentionRef(
      weights_, "l", kD, kHeads, ToDouble(x), c.rows, c.len, ToDouble(x),
      c.rows, c.len, c.key_lengths, {}, c.causal, 0, ToDouble(x));
  ExpectAllNear(hidden, expected, kAttentionTolerance, c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Layers, SelfAttentionTest,
    ::testing::Values(SelfAttentionCase{"Full", 2, 5, {5, 5}, false},
                      SelfAttentionCase{"Padded", 3, 5, {5, 3, 1}, false},
                      SelfAttentionCase{"Causal", 2, 6, {6, 6}, true},
                      SelfAttentionCase{"OneToken", 1, 1, {1}, false}),
    [](const auto& info) { return info.param.name; });

TEST_F(MultiHeadAttentionTest, CrossAttentionWithKvRows) {
  // 4 query rows (2 beams per source) over 2 sources of 6 and 4 real tokens.
  const int64_t sources = 2, src_len = 6, rows = 4, len = 2;
  const std::vector<int> src_lengths = {6, 4};
  const std::vector<int> kv_rows = {0, 0, 1, 1};
  const std::vector<float> memory = RandomVector(sources * src_len * kD, rng_);
  const std::vector<float> x = RandomVector(rows * len * kD, rng_);
  KeyValueCache cross;
  cross.Resize(sources, kHeads, src_len, kHeadDim);
  attention_.ProjectKeyValues(ctx_, memory.data(), sources, src_len, &cross,
                              &scratch_);
  std::vector<float> hidden = x;
  attention_.CrossAttention(ctx_, hidden.data(), rows, len, cross,
                            src_lengths.data(), kv_rows.data(), &scratch_);
  const Matrix expected = AttentionRef(
      weights_, "l", kD, kHeads, ToDouble(x), rows, len, ToDouble(memory),
      sources, src_len, src_lengths, kv_rows, false, 0, ToDouble(x));
  ExpectAllNear(hidden, expected, kAttentionTolerance, "cross attention");

  // Without kv_rows, row n reads source n.
  const std::vector<float> two_rows(x.begin(), x.begin() + 2 * len * kD);
  hidden = two_rows;
  attention_.CrossAttention(ctx_, hidden.data(), 2, len, cross,
                            src_lengths.data(), nullptr, &scratch_);
  ExpectAllNear(hidden,
                AttentionRef(weights_, "l", kD, kHeads, ToDouble(two_rows), 2,
                             len, ToDouble(memory), sources, src_len,
                             src_lengths, {}, false, 0, ToDouble(two_rows)),
                kAttentionTolerance, "cross attention, identity rows");
}

// Feeding a prefix position by position through the cache equals one causal
// pass over the whole prefix (and the reference).
TEST_F(MultiHeadAttentionTest, IncrementalDecodingEqualsFullCausalPass) {
  const int64_t rows = 3, len = 7, capacity = 10;
  const std::vector<float> x = RandomVector(rows * len * kD, rng_);

  KeyValueCache full_cache;
  full_cache.Resize(rows, kHeads, capacity, kHeadDim);
  std::vector<float> full = x;
  const std::vector<int> full_lengths(rows, len);
  attention_.SelfAttention(ctx_, full.data(), rows, len, 0, &full_cache,
                           full_lengths.data(), true, &scratch_);
  const Matrix expected = AttentionRef(weights_, "l", kD, kHeads, ToDouble(x),
                                       rows, len, ToDouble(x), rows, len,
                                       full_lengths, {}, true, 0, ToDouble(x));
  ExpectAllNear(full, expected, kAttentionTolerance, "full causal pass");

  KeyValueCache cache;
  cache.Resize(rows, kHeads, capacity, kHeadDim);
  for (int64_t t = 0; t < len; ++t) {
    std::vector<float> step = Slice(x, rows, len, t, 1);
    const std::vector<int> lengths(rows, static_cast<int>(t + 1));
    attention_.SelfAttention(ctx_, step.data(), rows, 1, t, &cache,
                             lengths.data(), true, &scratch_);
    for (int64_t n = 0; n < rows; ++n) {
      for (int64_t c = 0; c < kD; ++c) {
        ASSERT_NEAR(step[n * kD + c], full[(n * len + t) * kD + c], 1e-5)
            << "row " << n << " step " << t << " dim " << c;
      }
    }
  }
}

// A chunk of positions [past, past + chunk) after a cached prefix.
TEST_F(MultiHeadAttentionTest, ChunkAfterCachedPrefixEqualsFullPass) {
  const int64_t rows = 2, past = 3, chunk = 3, len = past + chunk;
  const std::vector<float> x = RandomVector(rows * len * kD, rng_);
  KeyValueCache cache;
  cache.Resize(rows, kHeads, len, kHeadDim);
  std::vector<float> prefix = Slice(x, rows, len, 0, past);
  std::vector<float> rest = Slice(x, rows, len, past, chunk);
  const std::vector<int> prefix_lengths(rows, past), lengths(rows, len);
  attention_.SelfAttention(ctx_, prefix.data(), rows, past, 0, &cache,
                           prefix_lengths.data(), true, &scratch_);
  attention_.SelfAttention(ctx_, rest.data(), rows, chunk, past, &cache,
                           lengths.data(), true, &scratch_);
  const Matrix full =
      AttentionRef(weights_, "l", kD, kHeads, ToDouble(x), rows, len,
                   ToDouble(x), rows, len, lengths, {}, true, 0, ToDouble(x));
  Matrix expected(rest.size());
  for (int64_t n = 0; n < rows; ++n) {
    std::copy_n(full.begin() + (n * len + past) * kD, chunk * kD,
                expected.begin() + n * chunk * kD);
  }
  ExpectAllNear(rest, expected, kAttentionTolerance, "chunk");
}

// Rows' block lists follow beam reorders: each row reads its parent's
// history, writes land in that row's own blocks, shared blocks are copied
// only when partly written, and every block returns to the pool.
TEST(KeyValueRowsTest, ReorderSharesHistoryAndCopiesOnWrite) {
  const int64_t heads = 2, head_dim = 3;
  const int length = 14;  // the next steps cross the 16-position boundary
  KeyValueBlocks pool(/*num_layers=*/1, heads, head_dim);
  // Each entry encodes (origin, head, position, channel); values negate it.
  auto code = [&](int64_t n, int64_t h, int64_t p, int64_t e) {
    return static_cast<float>(1000 * n + 100 * h + 10 * p + e);
  };
  {
    KeyValueRows rows(&pool);
    for (int n = 0; n < 3; ++n) rows.AddRow();
    std::vector<int> table;
    // Writes positions [p, p + len) of every row, as a step does.
    auto write = [&](int len, const std::vector<int64_t>& origin) {
      rows.Prepare(len);
      const int64_t stride = rows.FillTable(&table);
      const KeyValueView view = pool.View(0, table.data(), stride);
      for (int n = 0; n < rows.rows(); ++n)
        for (int p = rows.length(n); p < rows.length(n) + len; ++p)
          for (int64_t h = 0; h < heads; ++h)
            for (int64_t e = 0; e < head_dim; ++e) {
              view.keys[view.Offset(n, h, p) + e] = code(origin[n], h, p, e);
              view.values[view.Offset(n, h, p) + e] = -code(origin[n], h, p, e);
            }
      rows.Advance(len);
    };
    // Checks that row n holds origins[n][p] at each of its positions.
    auto expect = [&](const std::vector<std::vector<int64_t>>& origins,
                      const char* what) {
      ASSERT_EQ(rows.rows(), static_cast<int>(origins.size())) << what;
      const int64_t stride = rows.FillTable(&table);
      const KeyValueView view = pool.View(0, table.data(), stride);
      for (int n = 0; n < rows.rows(); ++n) {
        ASSERT_EQ(rows.length(n), static_cast<int>(origins[n].size())) << what;
        for (int p = 0; p < rows.length(n); ++p)
          for (int64_t h = 0; h < heads; ++h)
            for (int64_t e = 0; e < head_dim; ++e) {
              ASSERT_EQ(view.keys[view.Offset(n, h, p) + e],
                        code(origins[n][p], h, p, e))
                  << what << ": row " << n << " head " << h << " pos " << p;
              ASSERT_EQ(view.values[view.Offset(n, h, p) + e],
                        -code(origins[n][p], h, p, e))
                  << what;
            }
      }
    };
    auto history = [&](int64_t origin, int len) {
      return std::vector<int64_t>(len, origin);
    };
    auto extend = [](std::vector<int64_t> h, std::vector<int64_t> more) {
      h.insert(h.end(), more.begin(), more.end());
      return h;
    };
    write(length, {0, 1, 2});
    EXPECT_EQ(pool.blocks_in_use(), 3);

    // Rows continue their parents' history (sharing it: no block is added);
    // a new position is then written by each new row into its own block.
    rows.Reorder({2, 0, 2});
    EXPECT_EQ(pool.blocks_in_use(), 2);
    expect({history(2, length), history(0, length), history(2, length)},
           "first reorder");
    write(1, {10, 11, 12});
    // Rows 0 and 2 shared a partly written block: one of them copied it.
    EXPECT_EQ(pool.blocks_in_use(), 3);
    const auto r0 = extend(history(2, length), {10});
    const auto r1 = extend(history(0, length), {11});
    const auto r2 = extend(history(2, length), {12});
    expect({r0, r1, r2}, "after a step");

    // Reorders compose, may drop rows (finished sentences leave the batch)
    // and may add rows (beams of a source start from its one row).
    rows.Reorder({1, 2});
    expect({r1, r2}, "rows dropped");
    EXPECT_EQ(pool.blocks_in_use(), 2);
    rows.Reorder({1, 1, 0, 0, 1});
    expect({r2, r2, r1, r1, r2}, "rows added");
    // Position 15, the last of the first block, makes rows that share a
    // partly written block copy it; 16 and 17 start a second block per row.
    write(1, {20, 21, 22, 23, 24});
    write(2, {30, 31, 32, 33, 34});
    expect({extend(r2, {20, 30, 30}), extend(r2, {21, 31, 31}),
            extend(r1, {22, 32, 32}), extend(r1, {23, 33, 33}),
            extend(r2, {24, 34, 34})},
           "added rows step");
    EXPECT_EQ(pool.blocks_in_use(), 5 + 5);
  }
  EXPECT_EQ(pool.blocks_in_use(), 0);
}

// Blocks are allocated on demand, storage grows past its first reservation
// without losing what was written, and freed blocks are reused.
TEST(KeyValueBlocksTest, GrowsKeepsContentsAndReusesFreedBlocks) {
  KeyValueBlocks pool(/*num_layers=*/2, /*num_heads=*/1, /*head_dim=*/2);
  std::vector<int> blocks;
  for (int i = 0; i < 200; ++i) {  // past the initial 64-block capacity
    blocks.push_back(pool.Allocate());
    for (int layer = 0; layer < 2; ++layer) {
      const KeyValueView view = pool.View(layer, &blocks.back(), 1);
      view.keys[view.Offset(0, 0, 5)] = static_cast<float>(i + layer);
    }
  }
  EXPECT_EQ(pool.blocks_in_use(), 200);
  EXPECT_EQ(pool.bytes_in_use(), 200 * pool.block_bytes());
  EXPECT_EQ(pool.block_bytes(), 2 * 2 * 1 * KeyValueBlocks::kBlockSize * 2 * 4);
  for (int i = 0; i < 200; ++i) {
    for (int layer = 0; layer < 2; ++layer) {
      const KeyValueView view = pool.View(layer, &blocks[i], 1);
      ASSERT_EQ(view.keys[view.Offset(0, 0, 5)], static_cast<float>(i + layer));
    }
  }
  pool.Release(blocks[7]);
  EXPECT_EQ(pool.Allocate(), blocks[7]);
  EXPECT_EQ(pool.high_water_blocks(), 200);
}

// ---------------------------------------------------------- feed-forward

struct FeedForwardCase {
  const char* activation;  // config.json name
  int64_t rows, d, ffn;
  double tolerance;
};

void PrintTo(const FeedForwardCase& c, std::ostream* os) {
  *os << c.activation << " rows=" << c.rows << " d=" << c.d << " ffn=" << c.ffn;
}

class FeedForwardTest : public ::testing::TestWithParam<FeedForwardCase> {};

TEST_P(FeedForwardTest, MatchesLoop) {
  const FeedForwardCase& c = GetParam();
  std::mt19937 rng(23);
  Weights weights;
  AddLinear(weights, "f.fc1", c.d, c.ffn, rng);
  AddLinear(weights, "f.fc2", c.ffn, c.d, rng);
  auto ffn = FeedForward::Load(weights, "f", c.d, c.ffn,
                               ActivationFromName(c.activation));
  ASSERT_TRUE(ffn.ok()) << ffn.status();
  ffn->Pack(ops::ComputeType::kFloat32);
  const std::vector<float> x = RandomVector(c.rows * c.d, rng, -2.0f, 2.0f);
  std::vector<float> hidden = x, scratch;
  ExecutionContext ctx;
  ffn->Forward(ctx, hidden.data(), c.rows, &scratch);
  ExpectAllNear(
      hidden,
      FeedForwardRef(weights, "f", c.d, c.activation, ToDouble(x), c.rows),
      c.tolerance, c.activation);
}

INSTANTIATE_TEST_SUITE_P(
    Layers, FeedForwardTest,
    ::testing::Values(FeedForwardCase{"swish", 5, 8, 16, 1e-5},
                      FeedForwardCase{"silu", 1, 8, 16, 1e-5},
                      FeedForwardCase{"relu", 5, 8, 16, 1e-5},
                      FeedForwardCase{"gelu", 5, 8, 16, 1e-5},
                      FeedForwardCase{"swish", 9, 64, 256, 5e-5}),
    [](const auto& info) {
      return absl::StrCat(info.param.activation, "_R", info.param.rows, "D",
                          info.param.d);
    });

TEST(FeedForwardTest, LoadNamesTheTransposedTensor) {
  std::mt19937 rng(29);
  Weights weights;
  AddLinear(weights, "f.fc1", 16, 8, rng);  // [8, 16]: transposed
  AddLinear(weights, "f.fc2", 16, 8, rng);
  auto ffn = FeedForward::Load(weights, "f", 8, 16, ops::Activation::kSwish);
  ASSERT_FALSE(ffn.ok());
  EXPECT_EQ(ffn.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ffn.status().message().find("f.fc1.weight has shape [8, 16]"),
            std::string::npos)
      << ffn.status();
  EXPECT_NE(ffn.status().message().find("[16, 8]"), std::string::npos)
      << ffn.status();
}

TEST(ActivationFromNameTest, MapsConfigNames) {
  EXPECT_EQ(ActivationFromName("swish"), ops::Activation::kSwish);
  EXPECT_EQ(ActivationFromName("silu"), ops::Activation::kSwish);
  EXPECT_EQ(ActivationFromName("relu"), ops::Activation::kRelu);
  EXPECT_EQ(ActivationFromName("gelu"), ops::Activation::kGelu);
}

// --------------------------------------------- encoder and decoder layers

ModelConfig TinyConfig(const std::string& activation) {
  ModelConfig config;
  config.d_model = 8;
  config.encoder_attention_heads = 2;
  config.decoder_attention_heads = 2;
  config.encoder_ffn_dim = 16;
  config.decoder_ffn_dim = 16;
  config.activation_function = activation;
  config.layer_norm_eps = 1e-5f;
  return config;
}

constexpr double kLayerTolerance = 1e-4;  // after LayerNorm, values O(1)

class TransformerLayersTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    config_ = TinyConfig(GetParam());
    const int64_t d = config_.d_model;
    AddAttention(weights_, "enc.self_attn", d, rng_);
    AddLayerNorm(weights_, "enc.self_attn_layer_norm", d, rng_);
    AddLinear(weights_, "enc.fc1", d, config_.encoder_ffn_dim, rng_);
    AddLinear(weights_, "enc.fc2", config_.encoder_ffn_dim, d, rng_);
    AddLayerNorm(weights_, "enc.final_layer_norm", d, rng_);
    AddAttention(weights_, "dec.self_attn", d, rng_);
    AddLayerNorm(weights_, "dec.self_attn_layer_norm", d, rng_);
    AddAttention(weights_, "dec.encoder_attn", d, rng_);
    AddLayerNorm(weights_, "dec.encoder_attn_layer_norm", d, rng_);
    AddLinear(weights_, "dec.fc1", d, config_.decoder_ffn_dim, rng_);
    AddLinear(weights_, "dec.fc2", config_.decoder_ffn_dim, d, rng_);
    AddLayerNorm(weights_, "dec.final_layer_norm", d, rng_);
  }

  // Post-LayerNorm encoder layer over x[batch, src_len, d].
  Matrix EncoderRef(const Matrix& x, int64_t batch, int64_t src_len,
                    const std::vector<int>& lengths) {
    const int64_t d = config_.d_model;
    Matrix h = AttentionRef(weights_, "enc.self_attn", d, 2, x, batch, src_len,
                            x, batch, src_len, lengths, {}, false, 0, x);
    LayerNormRef(
        h, batch * src_len, d, Get(weights_, "enc.self_attn_layer_norm.weight"),
        Get(weights_, "enc.self_attn_layer_norm.bias"), config_.layer_norm_eps);
    h = FeedForwardRef(weights_, "enc", d, config_.activation_function, h,
                       batch * src_len);
    LayerNormRef(
        h, batch * src_len, d, Get(weights_, "enc.final_layer_norm.weight"),
        Get(weights_, "enc.final_layer_norm.bias"), config_.layer_norm_eps);
    return h;
  }

  // Post-LayerNorm decoder layer over the whole target prefix y[rows, len, d].
  Matrix DecoderRef(const Matrix& y, int64_t rows, int64_t len,
                    const Matrix& memory, int64_t sources, int64_t src_len,
                    const std::vector<int>& src_lengths,
                    const std::vector<int>& kv_rows) {
    const int64_t d = config_.d_model;
    const std::vector<int> self_lengths(rows, static_cast<int>(len));
    Matrix h = AttentionRef(weights_, "dec.self_attn", d, 2, y, rows, len, y,
                            rows, len, self_lengths, {}, true, 0, y);
    LayerNormRef(
        h, rows * len, d, Get(weights_, "dec.self_attn_layer_norm.weight"),
        Get(weights_, "dec.self_attn_layer_norm.bias"), config_.layer_norm_eps);
    h = AttentionRef(weights_, "dec.encoder_attn", d, 2, h, rows, len, memory,
                     sources, src_len, src_lengths, kv_rows, false, 0, h);
    LayerNormRef(h, rows * len, d,
                 Get(weights_, "dec.encoder_attn_layer_norm.weight"),
                 Get(weights_, "dec.encoder_attn_layer_norm.bias"),
                 config_.layer_norm_eps);
    h = FeedForwardRef(weights_, "dec", d, config_.activation_function, h,
                       rows * len);
    LayerNormRef(h, rows * len, d, Get(weights_, "dec.final_layer_norm.weight"),
                 Get(weights_, "dec.final_layer_norm.bias"),
                 config_.layer_norm_eps);
    return h;
  }

  std::mt19937 rng_{31};
  ModelConfig config_;
  Weights weights_;
  ExecutionContext ctx_;
  LayerScratch scratch_;
};

TEST_P(TransformerLayersTest, EncoderLayerMatchesPostLayerNormReference) {
  auto layer = EncoderLayer::Load(weights_, "enc", config_);
  ASSERT_TRUE(layer.ok()) << layer.status();
  layer->Pack(ops::ComputeType::kFloat32);
  const int64_t batch = 3, src_len = 5;
  const std::vector<int> lengths = {5, 3, 1};
  const std::vector<float> x =
      RandomVector(batch * src_len * 8, rng_, -2.0f, 2.0f);
  std::vector<float> hidden = x;
  layer->Forward(ctx_, hidden.data(), batch, src_len, lengths.data(),
                 &scratch_);
  ExpectAllNear(hidden, EncoderRef(ToDouble(x), batch, src_len, lengths),
                kLayerTolerance, "encoder layer");

  // Padding does not leak: sentence 1 alone (3 tokens, no padding) gives the
  // same states for its real tokens.
  std::vector<float> alone(x.begin() + 1 * src_len * 8,
                           x.begin() + (1 * src_len + 3) * 8);
  const std::vector<int> alone_length = {3};
  layer->Forward(ctx_, alone.data(), 1, 3, alone_length.data(), &scratch_);
  for (int64_t i = 0; i < 3 * 8; ++i) {
    ASSERT_NEAR(alone[i], hidden[1 * src_len * 8 + i], 1e-5) << i;
  }
}

TEST_P(TransformerLayersTest, DecoderLayerMatchesReferenceFullAndIncremental) {
  auto layer = DecoderLayer::Load(weights_, "dec", config_);
  ASSERT_TRUE(layer.ok()) << layer.status();
  layer->Pack(ops::ComputeType::kFloat32);
  EXPECT_EQ(layer->num_heads(), 2);
  EXPECT_EQ(layer->head_dim(), 4);
  const int64_t d = 8, sources = 2, src_len = 4, rows = 4, len = 5;
  const std::vector<int> src_lengths = {4, 2};
  const std::vector<int> kv_rows = {0, 1, 1, 0};
  const std::vector<float> memory =
      RandomVector(sources * src_len * d, rng_, -2.0f, 2.0f);
  const std::vector<float> y = RandomVector(rows * len * d, rng_, -2.0f, 2.0f);

  KeyValueCache cross;
  cross.Resize(sources, 2, src_len, 4);
  layer->ComputeCrossKeyValues(ctx_, memory.data(), sources, src_len,
                               cross.View(), &scratch_);
  const Matrix expected = DecoderRef(ToDouble(y), rows, len, ToDouble(memory),
                                     sources, src_len, src_lengths, kv_rows);

  // The whole prefix at once.
  KeyValueCache self_kv;
  self_kv.Resize(rows, 2, len, 4);
  std::vector<float> hidden = y;
  const std::vector<int> full_lengths(rows, len);
  layer->Forward(ctx_, hidden.data(), rows, len, nullptr, self_kv.View(),
                 full_lengths.data(), cross.View(), src_lengths.data(),
                 kv_rows.data(), &scratch_);
  ExpectAllNear(hidden, expected, kLayerTolerance, "decoder layer, full pass");

  // One position at a time through the self-attention cache.
  KeyValueCache step_kv;
  step_kv.Resize(rows, 2, len + 2, 4);  // capacity past the prefix
  for (int64_t t = 0; t < len; ++t) {
    std::vector<float> step(rows * d);
    for (int64_t n = 0; n < rows; ++n) {
      std::copy_n(y.begin() + (n * len + t) * d, d, step.begin() + n * d);
    }
    const std::vector<int> past(rows, static_cast<int>(t));
    const std::vector<int> lengths(rows, static_cast<int>(t + 1));
    layer->Forward(ctx_, step.data(), rows, 1, past.data(), step_kv.View(),
                   lengths.data(), cross.View(), src_lengths.data(),
                   kv_rows.data(), &scratch_);
    for (int64_t n = 0; n < rows; ++n) {
      for (int64_t c = 0; c < d; ++c) {
        ASSERT_NEAR(step[n * d + c], expected[(n * len + t) * d + c],
                    kLayerTolerance)
            << "row " << n << " step " << t << " dim " << c;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, TransformerLayersTest,
                         ::testing::Values("swish", "relu", "gelu"),
                         [](const auto& info) {
                           return std::string(info.param);
                         });

TEST(TransformerLayersLoadTest, MissingTensorIsNamed) {
  std::mt19937 rng(37);
  Weights weights;
  AddAttention(weights, "enc.self_attn", 8, rng);
  AddLayerNorm(weights, "enc.self_attn_layer_norm", 8, rng);
  AddLinear(weights, "enc.fc1", 8, 16, rng);
  AddLinear(weights, "enc.fc2", 16, 8, rng);
  auto layer = EncoderLayer::Load(weights, "enc", TinyConfig("swish"));
  ASSERT_FALSE(layer.ok());
  EXPECT_NE(layer.status().message().find("enc.final_layer_norm.weight"),
            std::string::npos)
      << layer.status();
}

}  // namespace
}  // namespace ts::core
