// Each copy of core/ops/kernels (AVX-512, AVX2, baseline; those this CPU has)
// against plain double-precision loops on seeded random inputs.
#include "core/ops/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ts::core::ops::kernels {
namespace {

std::vector<float> RandomVector(size_t size, std::mt19937& rng, float low,
                                float high) {
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> values(size);
  for (float& v : values) v = dist(rng);
  return values;
}

class KernelsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    initial_ = IsaName();
    if (!SelectIsaForTesting(GetParam())) {
      GTEST_SKIP() << "this CPU has no " << GetParam();
    }
    ASSERT_EQ(IsaName(), GetParam());
  }
  void TearDown() override { SelectIsaForTesting(initial_); }

  std::string initial_;
  std::mt19937 rng_{7};
};

TEST_P(KernelsTest, LogSumExpMatchesDoubleLoop) {
  // Lengths around the vector widths, a vocabulary-sized row, large values
  // (no overflow), and -inf entries (banned tokens) that count as zero.
  for (int64_t n : {1, 7, 16, 33, 65001}) {
    for (float spread : {1.0f, 30.0f, 500.0f}) {
      std::vector<float> x = RandomVector(n, rng_, -spread, spread);
      if (n > 2) x[1] = -std::numeric_limits<float>::infinity();
      double max = -std::numeric_limits<double>::infinity();
      for (float v : x) max = std::max<double>(max, v);
      double sum = 0.0;
      for (float v : x) sum += std::exp(v - max);
      float got_max = 0.0f;
      const float got = LogSumExp(x.data(), n, &got_max);
      EXPECT_EQ(got_max, static_cast<float>(max)) << n << " " << spread;
      EXPECT_NEAR(got, std::log(sum), 2e-6 * std::max(1.0, std::log(sum)))
          << "n " << n << " spread " << spread;
    }
  }
}

TEST_P(KernelsTest, AttendQueryMatchesDoubleLoop) {
  const int64_t head_dim = 64, pool = 40;
  const std::vector<float> k = RandomVector(pool * head_dim, rng_, -2, 2);
  const std::vector<float> v = RandomVector(pool * head_dim, rng_, -2, 2);
  const std::vector<float> q = RandomVector(head_dim, rng_, -2, 2);
  std::uniform_int_distribution<int64_t> pick(0, pool - 1);
  // Key counts below, at and past the 4-key blocks; keys scattered over the
  // pool as beam histories are.
  for (int64_t num_keys : {0, 1, 3, 4, 5, 9, 32}) {
    std::vector<int64_t> offsets(num_keys);
    for (int64_t& o : offsets) o = pick(rng_) * head_dim;
    std::vector<double> scores(num_keys);
    double max = -1e300, sum = 0.0;
    for (int64_t j = 0; j < num_keys; ++j) {
      double dot = 0.0;
      for (int64_t c = 0; c < head_dim; ++c) {
        dot += static_cast<double>(q[c]) * k[offsets[j] + c];
      }
      scores[j] = dot;
      max = std::max(max, dot);
    }
    for (double& s : scores) sum += (s = std::exp(s - max));
    std::vector<float> scratch(std::max<int64_t>(num_keys, 1));
    std::vector<float> out(head_dim, 123.0f);  // overwritten, not added to
    AttendQuery(q.data(), k.data(), v.data(), offsets.data(), num_keys,
                head_dim, scratch.data(), out.data());
    for (int64_t c = 0; c < head_dim; ++c) {
      double expected = 0.0;
      for (int64_t j = 0; j < num_keys; ++j) {
        expected += scores[j] / sum * v[offsets[j] + c];
      }
      ASSERT_NEAR(out[c], expected, 2e-6) << num_keys << " keys, dim " << c;
    }
  }
}

TEST_P(KernelsTest, QuantizeRowRoundsHalfAwayFromZero) {
  for (int64_t k : {1, 17, 512}) {
    std::vector<float> x = RandomVector(k, rng_, -3, 3);
    std::vector<int8_t> q(k);
    const float scale = QuantizeRow(x.data(), k, q.data());
    double max_abs = 0.0;
    for (float v : x) max_abs = std::max<double>(max_abs, std::fabs(v));
    ASSERT_FLOAT_EQ(scale, static_cast<float>(max_abs / 127.0));
    for (int64_t c = 0; c < k; ++c) {
      const float scaled = x[c] * (1.0f / scale);
      ASSERT_EQ(q[c], static_cast<int8_t>(std::round(scaled))) << c;
    }
  }
  std::vector<float> zeros(8, 0.0f);
  std::vector<int8_t> q(8, 1);
  EXPECT_EQ(QuantizeRow(zeros.data(), 8, q.data()), 1.0f);
  EXPECT_EQ(q, std::vector<int8_t>(8, 0));
}

// NaN and Inf in a row (an overflowed activation) must not reach the
// float-to-int cast undefined (UBSan: -DTS_ASAN=ON runs this test under it):
// NaN gives 0, values past the range clamp to +-127.
TEST_P(KernelsTest, QuantizeRowClampsNonFiniteValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t k : {1, 5, 40}) {  // scalar tail and vector body
    std::vector<float> x = RandomVector(k, rng_, -3, 3);
    x[0] = nan;
    std::vector<int8_t> q(k, 99);
    const float scale = QuantizeRow(x.data(), k, q.data());
    EXPECT_EQ(q[0], 0) << "NaN, k " << k;
    for (int64_t c = 0; c < k; ++c) {
      EXPECT_LE(std::abs(int{q[c]}), 127) << c;
    }
    EXPECT_TRUE(std::isfinite(scale) || std::isnan(scale)) << scale;

    std::vector<float> y = RandomVector(k, rng_, -3, 3);
    y[k - 1] = -inf;
    if (k > 1) y[0] = inf;
    std::fill(q.begin(), q.end(), 99);
    const float inf_scale = QuantizeRow(y.data(), k, q.data());
    EXPECT_TRUE(std::isinf(inf_scale)) << inf_scale;
    for (int64_t c = 0; c < k; ++c) {
      // Inf / Inf is NaN: 0, never an undefined cast; finite values are 0.
      EXPECT_EQ(q[c], 0) << c << " of " << k;
    }
  }
}

TEST_P(KernelsTest, DequantizeRowAppliesEpilogue) {
  const int64_t n = 37;
  std::uniform_int_distribution<int32_t> product(-40000, 40000);
  std::vector<int32_t> products(n);
  for (int32_t& p : products) p = product(rng_);
  const std::vector<float> col_scales = RandomVector(n, rng_, 1e-4f, 1e-3f);
  const std::vector<float> bias = RandomVector(n, rng_, -1, 1);
  const std::vector<float> base = RandomVector(n, rng_, -1, 1);
  const float row_scale = 0.37f, scale = 0.5f;
  for (Activation act : {Activation::kNone, Activation::kSwish,
                         Activation::kRelu, Activation::kGelu}) {
    for (bool accumulate : {false, true}) {
      for (bool with_bias : {false, true}) {
        std::vector<float> y = base;
        DequantizeRow(act, products.data(), row_scale, col_scales.data(),
                      with_bias ? bias.data() : nullptr, scale, accumulate, n,
                      y.data());
        if (!accumulate) {  // the same from the products' bits in place
          std::vector<float> in_place(n);
          std::memcpy(in_place.data(), products.data(), n * sizeof(float));
          DequantizeRowInPlace(act, row_scale, col_scales.data(),
                               with_bias ? bias.data() : nullptr, scale, n,
                               in_place.data());
          ASSERT_EQ(in_place, y);
        }
        for (int64_t c = 0; c < n; ++c) {
          double v =
              products[c] * (static_cast<double>(row_scale) * col_scales[c]);
          if (with_bias) v += bias[c];
          v *= scale;
          if (act == Activation::kSwish) v = v / (1.0 + std::exp(-v));
          if (act == Activation::kRelu) v = std::max(v, 0.0);
          if (act == Activation::kGelu)
            v = 0.5 * v * (1.0 + std::erf(v / M_SQRT2));
          if (accumulate) v += base[c];
          ASSERT_NEAR(y[c], v, 1e-5 * std::max(1.0, std::fabs(v)))
              << "activation " << static_cast<int>(act) << " accumulate "
              << accumulate << " bias " << with_bias << " column " << c;
        }
      }
    }
  }
}

TEST_P(KernelsTest, FindAtLeastReturnsTheFirstHit) {
  for (int64_t n : {0, 1, 15, 16, 17, 100, 65001}) {
    const std::vector<float> x = RandomVector(n, rng_, -1, 1);
    for (float threshold : {-2.0f, 0.0f, 0.99f, 0.9999f, 2.0f}) {
      for (int64_t start : {int64_t{0}, n / 3}) {
        const auto first =
            std::find_if(x.begin() + start, x.end(),
                         [&](float v) { return v >= threshold; });
        EXPECT_EQ(FindAtLeast(x.data() + start, n - start, threshold),
                  first - (x.begin() + start))
            << "n " << n << " threshold " << threshold << " start " << start;
      }
    }
  }
  // Ties count as hits.
  const std::vector<float> ties(40, 0.5f);
  EXPECT_EQ(FindAtLeast(ties.data(), 40, 0.5f), 0);
}

INSTANTIATE_TEST_SUITE_P(Isas, KernelsTest,
                         ::testing::Values("avx512", "avx2", "baseline"),
                         [](const auto& info) { return info.param; });

TEST(KernelsIsaTest, NamesAKnownIsa) {
  const std::string isa = IsaName();
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "baseline") << isa;
  EXPECT_FALSE(SelectIsaForTesting("sse9"));
  EXPECT_EQ(IsaName(), isa);
}

}  // namespace
}  // namespace ts::core::ops::kernels
