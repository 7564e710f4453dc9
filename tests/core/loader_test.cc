// Loading Hugging Face MarianMT folders: clear errors for broken files, and
// the checkpoint variants real OPUS-MT folders come in (tied embeddings only,
// F16/BF16, sharded) load to the same model. Folders are copies of the demo
// model in a test temp dir with one file rewritten.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/decoding/options.h"
#include "core/layers/embeddings.h"
#include "core/model/config.h"
#include "core/model/marian_model.h"
#include "core/model/model_memory.h"
#include "core/model/weights.h"
#include "core/text/tokenizer.h"
#include "core/translator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/synthetic_weights.h"

namespace ts::core {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

const fs::path kDemoDir = TS_DEMO_MODEL_DIR;
const fs::path kZhEnDir = fs::path(TS_DATA_DIR) / "opus-mt-zh-en-skeleton";

// ------------------------------------------------------ file helpers

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const fs::path& path, const std::string& contents) {
  fs::remove(path);  // may be a symlink to the demo model
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string LittleEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// One tensor of a safetensors file: dtype, shape and raw little-endian bytes.
struct StoredTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using TensorMap = std::map<std::string, StoredTensor>;

// A safetensors file: 8-byte little-endian header length, the JSON header
// (padded with spaces to 8 bytes, as the format allows), then the data.
std::string SerializeSafetensors(const TensorMap& tensors) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    header[name] = {
        {"dtype", tensor.dtype},
        {"shape", tensor.shape},
        {"data_offsets", {data.size(), data.size() + tensor.bytes.size()}}};
    data += tensor.bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return LittleEndian64(text.size()) + text + data;
}

TensorMap ParseSafetensors(const std::string& file) {
  uint64_t header_size = 0;
  std::memcpy(&header_size, file.data(), 8);
  const json header = json::parse(file.substr(8, header_size));
  const std::string data = file.substr(8 + header_size);
  TensorMap tensors;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const auto begin = entry["data_offsets"][0].get<uint64_t>();
    const auto end = entry["data_offsets"][1].get<uint64_t>();
    tensors[name] = {entry["dtype"].get<std::string>(),
                     entry["shape"].get<std::vector<int64_t>>(),
                     data.substr(begin, end - begin)};
  }
  return tensors;
}

std::vector<float> Floats(const StoredTensor& tensor) {
  std::vector<float> values(tensor.bytes.size() / 4);
  std::memcpy(values.data(), tensor.bytes.data(), tensor.bytes.size());
  return values;
}

StoredTensor F32Tensor(const std::vector<float>& values,
                       std::vector<int64_t> shape) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return {"F32", std::move(shape), std::move(bytes)};
}

// IEEE binary16, round to nearest even (subnormals, overflow to inf).
uint16_t FloatToHalf(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exponent = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff)
    return sign | 0x7c00u | (mantissa != 0 ? 0x200u : 0u);
  if (exponent >= 31) return sign | 0x7c00u;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa |= 0x800000u;
    const int shift = 14 - exponent;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half =
      sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    ++half;  // may carry: correct
  return static_cast<uint16_t>(half);
}

// bfloat16: the top 16 bits of the float, round to nearest even.
uint16_t FloatToBf16(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

TEST(HalfConversionTest, KnownBitPatterns) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(0.5f), 0x3800);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);               // largest finite
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);                   // overflow -> inf
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
}

StoredTensor ToHalfTensor(const StoredTensor& tensor,
                          const std::string& dtype) {
  const std::vector<float> values = Floats(tensor);
  std::string bytes(values.size() * 2, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t half =
        dtype == "F16" ? FloatToHalf(values[i]) : FloatToBf16(values[i]);
    std::memcpy(&bytes[2 * i], &half, 2);
  }
  return {dtype, tensor.shape, std::move(bytes)};
}

// ------------------------------------------- synthetic file and release

ModelConfig TinyConfig() {
  ModelConfig config;
  config.d_model = 16;
  config.encoder_layers = 1;
  config.decoder_layers = 2;
  config.encoder_ffn_dim = 32;
  config.decoder_ffn_dim = 24;
  config.vocab_size = 37;
  return config;
}

// The streamed file holds exactly the tensors SynthesizeWeights makes.
TEST(SyntheticWeightsTest, FileEqualsInMemoryWeights) {
  const ModelConfig config = TinyConfig();
  const fs::path dir = fs::path(::testing::TempDir()) / "synthetic_file";
  fs::create_directories(dir);
  ASSERT_TRUE(WriteSyntheticSafetensors(config, 99,
                                        (dir / "model.safetensors").string())
                  .ok());
  auto loaded = Weights::Load(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Weights expected = SynthesizeWeights(config, 99);
  ASSERT_EQ(loaded->Names(), expected.Names());
  EXPECT_EQ(loaded->Names().size(), 1u + 16 + 2 * 26 + 1);
  for (const std::string& name : expected.Names()) {
    const TensorView* a = loaded->Find(name);
    const TensorView* b = expected.Find(name);
    ASSERT_EQ(a->shape, b->shape) << name;
    ASSERT_TRUE(std::equal(a->data, a->data + a->numel(), b->data)) << name;
  }
}

// The tiny model's weights three ways: synthesized (the reference), mapped
// from the file they were written to, and synthesized again (owned).
class WeightsReleaseTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kSeed = 5;

  void SetUp() override {
    // One folder per test: ctest may run them at once.
    const fs::path dir =
        fs::path(::testing::TempDir()) /
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir);
    ASSERT_TRUE(WriteSyntheticSafetensors(config_, kSeed,
                                          (dir / "model.safetensors").string())
                    .ok());
    auto mapped = Weights::Load(dir.string());
    ASSERT_TRUE(mapped.ok()) << mapped.status();
    mapped_ = std::move(*mapped);
  }

  const ModelConfig config_ = TinyConfig();
  const Weights reference_ = SynthesizeWeights(config_, kSeed);
  Weights owned_ = SynthesizeWeights(config_, kSeed);
  Weights mapped_;
};

// Released tensors are gone; the others (owned or mapped) keep their values.
TEST_F(WeightsReleaseTest, ReleaseDropsOnlyTheNamedTensor) {
  for (Weights* weights : {&mapped_, &owned_}) {
    const size_t before = weights->Names().size();
    weights->Release("model.shared.weight");
    weights->Release("model.decoder.layers.1.fc1.weight");
    weights->Release("no.such.tensor");
    EXPECT_EQ(weights->Find("model.shared.weight"), nullptr);
    EXPECT_EQ(weights->Find("model.decoder.layers.1.fc1.weight"), nullptr);
    EXPECT_EQ(weights->Names().size(), before - 2);
    for (const std::string& name : weights->Names()) {
      const TensorView* a = weights->Find(name);
      const TensorView* b = reference_.Find(name);
      ASSERT_TRUE(std::equal(a->data, a->data + a->numel(), b->data)) << name;
    }
  }
}

// ReleaseRows gives back memory only: the tensor stays, and every value reads
// the same (a mapped page comes back from the file; an owned buffer stays
// until Release).
TEST_F(WeightsReleaseTest, ReleaseRowsKeepsTheTensorReadable) {
  const std::string name = "model.shared.weight";
  for (Weights* weights : {&mapped_, &owned_}) {
    const size_t before = weights->Names().size();
    weights->ReleaseRows(name, config_.vocab_size / 2);
    weights->ReleaseRows(name, config_.vocab_size + 100);  // clamped
    weights->ReleaseRows("no.such.tensor", 3);
    EXPECT_EQ(weights->Names().size(), before);
    const TensorView* a = weights->Find(name);
    ASSERT_NE(a, nullptr);
    const TensorView* b = reference_.Find(name);
    ASSERT_TRUE(std::equal(a->data, a->data + a->numel(), b->data));
  }
}

// ------------------------------------------------------------ fixture

constexpr const char* kSentences[] = {
    "A man in an orange hat starring at something.",
    "Two dogs are playing in the snow.",
    "A little girl is climbing into a wooden playhouse.",
    "A woman in a red jacket is riding a bicycle down the street.",
    "People are standing outside a building.",
};

class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    demo_tensors_ = new TensorMap(
        ParseSafetensors(ReadFile(kDemoDir / "model.safetensors")));
    auto model = MarianModel::Load(kDemoDir.string());
    ASSERT_TRUE(model.ok()) << model.status();
    demo_ids_ = new std::vector<std::vector<int>>(
        GreedyIds(*model, std::size(kSentences)));
  }

  static void TearDownTestSuite() {
    delete demo_tensors_;
    delete demo_ids_;
  }

  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  // A copy of the demo folder's small files; model.safetensors is a symlink
  // to the original unless a test rewrites it.
  fs::path MakeModelDir(const std::string& name) {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    for (const char* file :
         {"config.json", "generation_config.json", "vocab.json", "source.spm",
          "target.spm", "tokenizer_config.json"}) {
      fs::copy_file(kDemoDir / file, dir / file);
    }
    fs::create_symlink(fs::absolute(kDemoDir / "model.safetensors"),
                       dir / "model.safetensors");
    return dir;
  }

  // Greedy ids (beam 1, max_length 128) of the first `count` sentences.
  static std::vector<std::vector<int>> GreedyIds(
      const std::shared_ptr<const MarianModel>& model, size_t count) {
    std::vector<std::vector<int>> sources;
    for (size_t i = 0; i < count; ++i) {
      auto ids = model->tokenizer().EncodeSource(kSentences[i]);
      EXPECT_TRUE(ids.ok()) << ids.status();
      sources.push_back(ids.ok() ? *ids : std::vector<int>{0});
    }
    TranslationOptions requested;
    requested.beam_size = 1;
    requested.max_length = 128;
    auto options = model->ResolveOptions(requested);
    EXPECT_TRUE(options.ok()) << options.status();
    Translator translator(
        model, /*intra_threads=*/1);  // steady timing on a busy CI box
    auto results = translator.Translate(sources, *options);
    EXPECT_TRUE(results.ok()) << results.status();
    std::vector<std::vector<int>> ids;
    if (!results.ok()) return ids;
    for (const TranslationResult& result : *results) {
      EXPECT_EQ(result.hypotheses.size(), 1u);
      ids.push_back(result.hypotheses.empty() ? std::vector<int>()
                                              : result.hypotheses[0].ids);
    }
    return ids;
  }

  // One folder per test (parameterized names contain '/').
  static fs::path TestRoot() {
    std::string name = absl::StrCat(
        "loader_test_", getpid(), "_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::replace(name.begin(), name.end(), '/', '_');
    return fs::path(::testing::TempDir()) / name;
  }

  const fs::path root_ = TestRoot();
  static TensorMap* demo_tensors_;
  static std::vector<std::vector<int>>* demo_ids_;
};

TensorMap* LoaderTest::demo_tensors_ = nullptr;
std::vector<std::vector<int>>* LoaderTest::demo_ids_ = nullptr;

TEST_F(LoaderTest, DemoTranslationsAreNonTrivial) {
  // The positive cases below compare against these ids, so they must be real
  // translations: finished with </s> (0) after some content.
  ASSERT_EQ(demo_ids_->size(), std::size(kSentences));
  for (const std::vector<int>& ids : *demo_ids_) {
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(ids.back(), 0);
  }
  EXPECT_NE((*demo_ids_)[0], (*demo_ids_)[1]);
}

// ------------------------------------------------------------ errors

struct LoaderErrorCase {
  const char* name;
  // Breaks the folder; returns substrings the error message must contain.
  std::function<std::vector<std::string>(const fs::path& dir,
                                         const TensorMap& demo)>
      corrupt;
  absl::StatusCode code;
};

std::string RawSafetensors(uint64_t header_length, const std::string& header,
                           const std::string& data) {
  return LittleEndian64(header_length) + header + data;
}

std::string RawSafetensors(const json& header, const std::string& data) {
  const std::string text = header.dump();
  return RawSafetensors(text.size(), text, data);
}

// The demo tensors with one changed.
TensorMap With(const TensorMap& demo, const std::string& name,
               StoredTensor tensor) {
  TensorMap tensors = demo;
  tensors[name] = std::move(tensor);
  return tensors;
}

const std::vector<LoaderErrorCase>& LoaderErrorCases() {
  static const auto* cases = new std::vector<LoaderErrorCase>{
      {"MissingFolder",
       [](const fs::path& dir, const TensorMap&) {
         fs::remove_all(dir);
         return std::vector<std::string>{"config.json", dir.string()};
       },
       absl::StatusCode::kNotFound},
      {"MissingConfig",
       [](const fs::path& dir, const TensorMap&) {
         fs::remove(dir / "config.json");
         return std::vector<std::string>{"config.json", dir.string()};
       },
       absl::StatusCode::kNotFound},
      {"ConfigNotJson",
       [](const fs::path& dir, const TensorMap&) {
         WriteFile(dir / "config.json", "{\"d_model\": 256, \"vocab_size\": ");
         return std::vector<std::string>{"config.json", "JSON"};
       },
       absl::StatusCode::kInvalidArgument},
      {"ConfigWithoutDModel",
       [](const fs::path& dir, const TensorMap&) {
         json config = json::parse(ReadFile(dir / "config.json"));
         config.erase("d_model");
         WriteFile(dir / "config.json", config.dump());
         return std::vector<std::string>{"config.json", "d_model"};
       },
       absl::StatusCode::kInvalidArgument},
      {"MissingVocab",
       [](const fs::path& dir, const TensorMap&) {
         fs::remove(dir / "vocab.json");
         return std::vector<std::string>{(dir / "vocab.json").string()};
       },
       absl::StatusCode::kNotFound},
      {"VocabWithoutPad",
       [](const fs::path& dir, const TensorMap&) {
         json vocab = json::parse(ReadFile(dir / "vocab.json"));
         vocab.erase("<pad>");
         WriteFile(dir / "vocab.json", vocab.dump());
         return std::vector<std::string>{"vocab.json", "<pad>"};
       },
       absl::StatusCode::kInvalidArgument},
      {"MissingWeights",
       [](const fs::path& dir, const TensorMap&) {
         fs::remove(dir / "model.safetensors");
         return std::vector<std::string>{"model.safetensors", dir.string()};
       },
       absl::StatusCode::kNotFound},
      {"SafetensorsShorterThan8Bytes",
       [](const fs::path& dir, const TensorMap&) {
         WriteFile(dir / "model.safetensors", std::string("\x05\0\0\0\0", 5));
         return std::vector<std::string>{(dir / "model.safetensors").string(),
                                         "5 bytes"};
       },
       absl::StatusCode::kDataLoss},
      {"HeaderLengthPastTheEnd",
       [](const fs::path& dir, const TensorMap&) {
         WriteFile(dir / "model.safetensors",
                   RawSafetensors(1000, "{}", std::string(6, ' ')));
         return std::vector<std::string>{(dir / "model.safetensors").string(),
                                         "header length 1000",
                                         "16"};  // file size
       },
       absl::StatusCode::kDataLoss},
      {"TruncatedDemoFile",  // the real file cut in the middle of its header
       [](const fs::path& dir, const TensorMap&) {
         std::string head(4000, '\0');
         std::ifstream(kDemoDir / "model.safetensors", std::ios::binary)
             .read(head.data(), 4000);
         WriteFile(dir / "model.safetensors", head);
         return std::vector<std::string>{(dir / "model.safetensors").string(),
                                         "header length"};
       },
       absl::StatusCode::kDataLoss},
      {"HeaderNotJson",
       [](const fs::path& dir, const TensorMap&) {
         WriteFile(dir / "model.safetensors",
                   RawSafetensors(12, "not json!!!!", "data"));
         return std::vector<std::string>{(dir / "model.safetensors").string(),
                                         "JSON"};
       },
       absl::StatusCode::kInvalidArgument},
      {"UnknownDtypeI64",
       [](const fs::path& dir, const TensorMap&) {
         const json header = {
             {"model.shared.weight",
              {{"dtype", "I64"}, {"shape", {2}}, {"data_offsets", {0, 16}}}}};
         WriteFile(dir / "model.safetensors",
                   RawSafetensors(header, std::string(16, '\0')));
         return std::vector<std::string>{(dir / "model.safetensors").string(),
                                         "model.shared.weight", "I64"};
       },
       absl::StatusCode::kInvalidArgument},
      {"OffsetsOutOfRange",
       [](const fs::path& dir, const TensorMap&) {
         const json header = {{"final_logits_bias",
                               {{"dtype", "F32"},
                                {"shape", {1, 4}},
                                {"data_offsets", {0, 16}}}}};
         WriteFile(dir / "model.safetensors",
                   RawSafetensors(header, std::string(8, '\0')));
         return std::vector<std::string>{(dir / "model.safetensors").string(),
                                         "final_logits_bias", "[0, 16]",
                                         "out of range"};
       },
       absl::StatusCode::kDataLoss},  // the data section is shorter than the
                                      // header says
      {"SizeNotMatchingShape",
       [](const fs::path& dir, const TensorMap&) {
         const json header = {{"final_logits_bias",
                               {{"dtype", "F32"},
                                {"shape", {2, 3}},
                                {"data_offsets", {0, 20}}}}};
         WriteFile(dir / "model.safetensors",
                   RawSafetensors(header, std::string(20, '\0')));
         return std::vector<std::string>{(dir / "model.safetensors").string(),
                                         "final_logits_bias", "20 bytes",
                                         "[2, 3]"};
       },
       absl::StatusCode::kInvalidArgument},
      {"Fc1Transposed",
       [](const fs::path& dir, const TensorMap& demo) {
         const std::string name = "model.encoder.layers.1.fc1.weight";
         const StoredTensor& fc1 = demo.at(name);  // [1024, 256]
         const int64_t rows = fc1.shape[0], cols = fc1.shape[1];
         const std::vector<float> values = Floats(fc1);
         std::vector<float> transposed(values.size());
         for (int64_t i = 0; i < rows; ++i)
           for (int64_t j = 0; j < cols; ++j)
             transposed[j * rows + i] = values[i * cols + j];
         WriteFile(dir / "model.safetensors",
                   SerializeSafetensors(
                       With(demo, name, F32Tensor(transposed, {cols, rows}))));
         return std::vector<std::string>{dir.string(), name, "[256, 1024]",
                                         "[1024, 256]"};
       },
       absl::StatusCode::kInvalidArgument},
      {"PositionsInterleaved",  // sin/cos alternating (fairseq / tensor2tensor
                                // style)
       [](const fs::path& dir, const TensorMap& demo) {
         const std::string name = "model.encoder.embed_positions.weight";
         const int64_t positions = demo.at(name).shape[0],
                       dim = demo.at(name).shape[1];
         std::vector<float> table(positions * dim);
         for (int64_t p = 0; p < positions; ++p)
           for (int64_t c = 0; c < dim; ++c) {
             const double angle = p / std::pow(10000.0, 2.0 * (c / 2) / dim);
             table[p * dim + c] = static_cast<float>(
                 c % 2 == 0 ? std::sin(angle) : std::cos(angle));
           }
         WriteFile(dir / "model.safetensors",
                   SerializeSafetensors(
                       With(demo, name, F32Tensor(table, {positions, dim}))));
         return std::vector<std::string>{dir.string(), name, "sinusoidal"};
       },
       absl::StatusCode::kInvalidArgument},
      {"LmHeadNotTied",
       [](const fs::path& dir, const TensorMap& demo) {
         std::vector<float> lm_head = Floats(demo.at("lm_head.weight"));
         lm_head[12345] += 0.5f;
         WriteFile(dir / "model.safetensors",
                   SerializeSafetensors(With(
                       demo, "lm_head.weight",
                       F32Tensor(lm_head, demo.at("lm_head.weight").shape))));
         return std::vector<std::string>{dir.string(), "lm_head.weight",
                                         "model.shared.weight"};
       },
       absl::StatusCode::kInvalidArgument},
      {"ShardMissing",
       [](const fs::path& dir, const TensorMap&) {
         fs::remove(dir / "model.safetensors");
         const json index = {
             {"weight_map",
              {{"model.shared.weight", "model-00001-of-00002.safetensors"}}}};
         WriteFile(dir / "model.safetensors.index.json", index.dump());
         return std::vector<std::string>{"model-00001-of-00002.safetensors"};
       },
       absl::StatusCode::kNotFound},
      {"IndexNamesTensorNotInShard",
       [](const fs::path& dir, const TensorMap& demo) {
         fs::remove(dir / "model.safetensors");
         TensorMap shard = {
             {"model.shared.weight", demo.at("model.shared.weight")}};
         WriteFile(dir / "shard.safetensors", SerializeSafetensors(shard));
         const json index = {
             {"weight_map",
              {{"model.shared.weight", "shard.safetensors"},
               {"model.decoder.layers.0.fc1.weight", "shard.safetensors"}}}};
         WriteFile(dir / "model.safetensors.index.json", index.dump());
         return std::vector<std::string>{"model.safetensors.index.json",
                                         "model.decoder.layers.0.fc1.weight",
                                         "shard.safetensors"};
       },
       absl::StatusCode::kInvalidArgument},
  };
  return *cases;
}

void PrintTo(const LoaderErrorCase& c, std::ostream* os) { *os << c.name; }

class LoaderErrorTest : public LoaderTest,
                        public ::testing::WithParamInterface<LoaderErrorCase> {
};

TEST_P(LoaderErrorTest, FailsWithAClearMessage) {
  const LoaderErrorCase& c = GetParam();
  const fs::path dir = MakeModelDir(c.name);
  const std::vector<std::string> expected = c.corrupt(dir, *demo_tensors_);
  auto model = MarianModel::Load(dir.string());
  ASSERT_FALSE(model.ok()) << c.name << " loaded";
  EXPECT_EQ(model.status().code(), c.code) << model.status();
  for (const std::string& part : expected) {
    EXPECT_THAT(std::string(model.status().message()), HasSubstr(part));
  }
}

INSTANTIATE_TEST_SUITE_P(Loader, LoaderErrorTest,
                         ::testing::ValuesIn(LoaderErrorCases()),
                         [](const auto& info) {
                           return std::string(info.param.name);
                         });

TEST_F(LoaderTest, AddSafetensorsFileNamesFileAndTensor) {
  // The same checks through Weights directly (as tools that merge files use
  // it).
  const fs::path dir = root_ / "direct";
  fs::create_directories(dir);
  const fs::path path = dir / "bad.safetensors";
  const json header = {
      {"encoder.w",
       {{"dtype", "I64"}, {"shape", {1}}, {"data_offsets", {0, 8}}}}};
  WriteFile(path, RawSafetensors(header, std::string(8, '\0')));
  Weights weights;
  const absl::Status status = weights.AddSafetensorsFile(path.string());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(path.string()), HasSubstr("encoder.w"),
                    HasSubstr("I64")));
  const absl::Status missing =
      weights.AddSafetensorsFile((dir / "absent.safetensors").string());
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("absent.safetensors"));
}

// ------------------------------------------------------- checkpoint variants

// Newer OPUS-MT checkpoints store the tied embedding once and no position
// tables or final_logits_bias (all zeros); the rest is derived.
TEST_F(LoaderTest, OnlySharedEmbeddingGivesTheSameTranslations) {
  const fs::path dir = MakeModelDir("shared_only");
  TensorMap tensors = *demo_tensors_;
  for (const char* name :
       {"model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight", "lm_head.weight",
        "model.encoder.embed_positions.weight",
        "model.decoder.embed_positions.weight", "final_logits_bias"}) {
    ASSERT_EQ(tensors.erase(name), 1u) << name;
  }
  WriteFile(dir / "model.safetensors", SerializeSafetensors(tensors));
  auto model = MarianModel::Load(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(GreedyIds(*model, std::size(kSentences)), *demo_ids_);
}

// Only a tied copy (here lm_head.weight) and no model.shared.weight.
TEST_F(LoaderTest, OnlyLmHeadCopyGivesTheSameTranslations) {
  const fs::path dir = MakeModelDir("lm_head_only");
  TensorMap tensors = *demo_tensors_;
  for (const char* name :
       {"model.shared.weight", "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight"}) {
    ASSERT_EQ(tensors.erase(name), 1u) << name;
  }
  WriteFile(dir / "model.safetensors", SerializeSafetensors(tensors));
  auto model = MarianModel::Load(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(GreedyIds(*model, 2),
            std::vector<std::vector<int>>(demo_ids_->begin(),
                                          demo_ids_->begin() + 2));
}

struct HalfCase {
  const char* dtype;
  double
      relative_error;  // rounding bound of the format: 2^-11 (F16), 2^-8 (BF16)
  double absolute_error;  // F16 subnormal spacing 2^-24
};

void PrintTo(const HalfCase& c, std::ostream* os) { *os << c.dtype; }

class HalfPrecisionTest : public LoaderTest,
                          public ::testing::WithParamInterface<HalfCase> {};

TEST_P(HalfPrecisionTest, LoadsConvertedAndTranslates) {
  const HalfCase& c = GetParam();
  const fs::path dir = MakeModelDir(c.dtype);
  TensorMap tensors;
  for (const auto& [name, tensor] : *demo_tensors_)
    tensors[name] = ToHalfTensor(tensor, c.dtype);
  WriteFile(dir / "model.safetensors", SerializeSafetensors(tensors));
  auto model = MarianModel::Load(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();

  // Values are converted, not reinterpreted: within the format's rounding of
  // the fp32 original, and not all equal to it.
  const std::vector<float> original =
      Floats(demo_tensors_->at("model.shared.weight"));
  auto weights = Weights::Load(dir.string());
  ASSERT_TRUE(weights.ok()) << weights.status();
  const TensorView* loaded = weights->Find("model.shared.weight");
  ASSERT_NE(loaded, nullptr);
  ASSERT_EQ(loaded->numel(), static_cast<int64_t>(original.size()));
  size_t changed = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    ASSERT_NEAR(loaded->data[i], original[i],
                std::fabs(original[i]) * c.relative_error + c.absolute_error)
        << "entry " << i;
    changed += loaded->data[i] != original[i];
  }
  EXPECT_GT(changed, original.size() / 2);

  const std::vector<std::vector<int>> ids = GreedyIds(*model, 3);
  ASSERT_EQ(ids.size(), 3u);
  for (const std::vector<int>& hypothesis : ids) {
    ASSERT_GE(hypothesis.size(), 2u);
    EXPECT_EQ(hypothesis.back(), 0);  // </s>: the model still works
  }
}

INSTANTIATE_TEST_SUITE_P(Loader, HalfPrecisionTest,
                         ::testing::Values(HalfCase{"F16", 1.0 / 2048, 6e-8},
                                           HalfCase{"BF16", 1.0 / 256, 0.0}),
                         [](const auto& info) {
                           return std::string(info.param.dtype);
                         });

TEST_F(LoaderTest, ShardedCheckpointGivesTheSameTranslations) {
  const fs::path dir = MakeModelDir("sharded");
  fs::remove(dir / "model.safetensors");
  const char* shard_names[] = {"model-00001-of-00002.safetensors",
                               "model-00002-of-00002.safetensors"};
  TensorMap shards[2];
  json weight_map = json::object();
  size_t total_size = 0, i = 0;
  for (const auto& [name, tensor] : *demo_tensors_) {
    const int shard = i++ < demo_tensors_->size() / 2 ? 0 : 1;
    shards[shard][name] = tensor;
    weight_map[name] = shard_names[shard];
    total_size += tensor.bytes.size();
  }
  ASSERT_FALSE(shards[0].empty());
  ASSERT_FALSE(shards[1].empty());
  for (int s = 0; s < 2; ++s)
    WriteFile(dir / shard_names[s], SerializeSafetensors(shards[s]));
  const json index = {{"metadata", {{"total_size", total_size}}},
                      {"weight_map", weight_map}};
  WriteFile(dir / "model.safetensors.index.json", index.dump(2));

  auto weights = Weights::Load(dir.string());
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->Names().size(), demo_tensors_->size());
  auto model = MarianModel::Load(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(GreedyIds(*model, std::size(kSentences)), *demo_ids_);
}

// ------------------------------------------------------- memory figures

// The sizes --check prints and deploy/README.md's formula uses, predicted
// from config.json alone, match what the loaded model holds in each compute
// type (within 5%: oneDNN pads packed layouts and adds int8 compensation,
// 3.6% of int8 on this small model), and the KV-cache bytes are
// 2 x decoder_layers x d_model floats.
TEST(ModelMemoryTest, PredictionMatchesLoadedModel) {
  const json raw = json::parse(ReadFile(kDemoDir / "config.json"));
  auto config = ModelConfig::Load(kDemoDir.string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(KvCacheBytesPerToken(*config),
            2 * raw["decoder_layers"].get<int64_t>() *
                raw["d_model"].get<int64_t>() * 4);
  std::vector<ops::ComputeType> types = {ops::ComputeType::kFloat32,
                                         ops::ComputeType::kInt8};
  if (ops::BFloat16MatmulSupported()) {
    types.push_back(ops::ComputeType::kBFloat16);
  }
  int64_t fp32_bytes = 0;
  for (ops::ComputeType type : types) {
    auto model = MarianModel::Load(kDemoDir.string(), type);
    ASSERT_TRUE(model.ok()) << model.status();
    const double predicted = static_cast<double>(WeightBytes(*config, type));
    const double loaded =
        static_cast<double>((*model)->resident_weight_bytes());
    EXPECT_NEAR(loaded / predicted, 1.0, 0.05)
        << "compute type " << static_cast<int>(type) << ": loaded " << loaded
        << " bytes, predicted " << predicted;
    if (type == ops::ComputeType::kFloat32) {
      fp32_bytes = WeightBytes(*config, type);
      // fp32 holds at least every parameter of the checkpoint once.
      EXPECT_GE(loaded, static_cast<double>((*model)->weight_bytes()));
    }
  }
  // int8 holds about a quarter of fp32 (the fp32 biases, norms and
  // positions keep it above).
  const int64_t int8_bytes = WeightBytes(*config, ops::ComputeType::kInt8);
  EXPECT_LT(int8_bytes, fp32_bytes / 2);
  EXPECT_GT(int8_bytes, fp32_bytes / 5);
}

// Translator::Translate checks max_length against the position table itself
// (not only through ResolveOptions or the server's validation): the decoder
// reads positions up to max_length - 2.
TEST(TranslatorTest, MaxLengthBeyondPositionsIsInvalidArgument) {
  auto model = MarianModel::Load(kDemoDir.string());
  ASSERT_TRUE(model.ok()) << model.status();
  const int positions = (*model)->config().max_position_embeddings;
  auto ids = (*model)->tokenizer().EncodeSource("Two dogs play.");
  ASSERT_TRUE(ids.ok()) << ids.status();
  Translator translator(*model, /*intra_threads=*/1);
  TranslationOptions options;
  options.beam_size = 1;
  options.num_hypotheses = 1;
  options.max_length = positions + 2;
  auto too_long = translator.Translate({*ids}, options);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      too_long.status().message(),
      AllOf(HasSubstr(absl::StrCat("max_length ", positions + 2)),
            HasSubstr(absl::StrCat("max_position_embeddings ", positions))));
  options.max_length = 0;  // unresolved
  EXPECT_EQ(translator.Translate({*ids}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.max_length = positions + 1;  // the largest that fits
  auto longest = translator.Translate({*ids}, options);
  ASSERT_TRUE(longest.ok()) << longest.status();
  ASSERT_EQ(longest->size(), 1u);
  EXPECT_FALSE((*longest)[0].hypotheses[0].ids.empty());
}

// --------------------------------------------------- OPUS-MT zh-en skeleton

TEST(OpusMtSkeletonTest, ConfigAndTokenizer) {
  auto config = ModelConfig::Load(kZhEnDir.string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->d_model, 512);
  EXPECT_EQ(config->encoder_layers, 6);
  EXPECT_EQ(config->decoder_layers, 6);
  EXPECT_EQ(config->encoder_attention_heads, 8);
  EXPECT_EQ(config->decoder_attention_heads, 8);
  EXPECT_EQ(config->encoder_ffn_dim, 2048);
  EXPECT_EQ(config->decoder_ffn_dim, 2048);
  EXPECT_EQ(config->vocab_size, 65001);
  EXPECT_EQ(config->pad_token_id, 65000);
  EXPECT_EQ(config->decoder_start_token_id, 65000);
  EXPECT_EQ(config->eos_token_id, 0);
  EXPECT_EQ(config->activation_function, "swish");
  const json raw = json::parse(ReadFile(kZhEnDir / "config.json"));
  EXPECT_EQ(config->num_beams, raw["num_beams"].get<int>());
  EXPECT_EQ(config->max_position_embeddings,
            raw["max_position_embeddings"].get<int>());
  EXPECT_EQ(config->bad_words_ids, std::vector<int>{65000});

  auto tokenizer = MarianTokenizer::Load(kZhEnDir.string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->vocab_size(), 65001);
  EXPECT_EQ(tokenizer->eos_id(), 0);
  EXPECT_EQ(tokenizer->pad_id(), 65000);
  for (const char* text :
       {"我喜欢学习中文。", "今天天气很好，我们去公园散步吧！"}) {
    auto ids = tokenizer->EncodeSource(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    ASSERT_GE(ids->size(), 3u) << text;
    EXPECT_EQ(ids->back(), 0) << text;
    EXPECT_THAT(*ids, ::testing::Not(::testing::Contains(tokenizer->unk_id())))
        << text;
  }
}

// Random weights under every name and shape a Hugging Face MarianMTModel
// checkpoint of the zh-en config has: the base size loads and decodes.
TEST(OpusMtSkeletonTest, RandomWeightModelDecodes) {
  auto config = ModelConfig::Load(kZhEnDir.string());
  ASSERT_TRUE(config.ok()) << config.status();
  auto tokenizer = MarianTokenizer::Load(kZhEnDir.string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const int64_t d = config->d_model, vocab = config->vocab_size;

  // 77 M normal(0, 0.02) values: drawn once into a pool of 2^20 and read
  // from a random start with a random odd stride per tensor (drawing each
  // one would dominate the test's time; only shapes matter here).
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> pool(1 << 20);
  for (float& v : pool) v = normal(rng);
  const size_t mask = pool.size() - 1;
  Weights weights;
  auto add_random = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t numel = 1;
    for (int64_t dim : shape) numel *= dim;
    const size_t start = rng() & mask, stride = (rng() & mask) | 1;
    std::vector<float> values(numel);
    for (int64_t i = 0; i < numel; ++i)
      values[i] = pool[(start + i * stride) & mask];
    weights.Add(name, std::move(values), std::move(shape));
  };
  auto add_constant = [&](const std::string& name, float value,
                          std::vector<int64_t> shape) {
    int64_t numel = 1;
    for (int64_t dim : shape) numel *= dim;
    weights.Add(name, std::vector<float>(numel, value), std::move(shape));
  };
  auto add_linear = [&](const std::string& prefix, int64_t in, int64_t out) {
    add_random(prefix + ".weight", {out, in});
    add_constant(prefix + ".bias", 0.0f, {out});
  };
  auto add_layer_norm = [&](const std::string& prefix) {
    add_constant(prefix + ".weight", 1.0f, {d});
    add_constant(prefix + ".bias", 0.0f, {d});
  };
  auto add_attention = [&](const std::string& prefix) {
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add_linear(absl::StrCat(prefix, ".", proj), d, d);
    }
  };
  add_random("model.shared.weight", {vocab, d});
  // The static position tables as transformers stores them (recomputed here
  // independently of the engine, in double).
  const int64_t positions = config->max_position_embeddings;
  std::vector<float> table(positions * d);
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t c = 0; c < d; ++c) {
      const int64_t i = c < d / 2 ? c : c - d / 2;
      const double angle = p / std::pow(10000.0, 2.0 * i / d);
      table[p * d + c] =
          static_cast<float>(c < d / 2 ? std::sin(angle) : std::cos(angle));
    }
  weights.Add("model.encoder.embed_positions.weight", table, {positions, d});
  weights.Add("model.decoder.embed_positions.weight", table, {positions, d});
  for (int i = 0; i < config->encoder_layers; ++i) {
    const std::string prefix = absl::StrCat("model.encoder.layers.", i);
    add_attention(prefix + ".self_attn");
    add_layer_norm(prefix + ".self_attn_layer_norm");
    add_linear(prefix + ".fc1", d, config->encoder_ffn_dim);
    add_linear(prefix + ".fc2", config->encoder_ffn_dim, d);
    add_layer_norm(prefix + ".final_layer_norm");
  }
  for (int i = 0; i < config->decoder_layers; ++i) {
    const std::string prefix = absl::StrCat("model.decoder.layers.", i);
    add_attention(prefix + ".self_attn");
    add_layer_norm(prefix + ".self_attn_layer_norm");
    add_attention(prefix + ".encoder_attn");
    add_layer_norm(prefix + ".encoder_attn_layer_norm");
    add_linear(prefix + ".fc1", d, config->decoder_ffn_dim);
    add_linear(prefix + ".fc2", config->decoder_ffn_dim, d);
    add_layer_norm(prefix + ".final_layer_norm");
  }
  add_constant("final_logits_bias", 0.0f, {1, vocab});

  const int pad = config->pad_token_id;
  std::vector<std::vector<int>> sources;
  for (const char* text :
       {"我喜欢学习中文。", "今天天气很好，我们去公园散步吧！", "你好"}) {
    auto ids = tokenizer->EncodeSource(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    sources.push_back(*ids);
  }
  auto model = MarianModel::FromParts(*std::move(config), std::move(weights),
                                      *std::move(tokenizer));
  ASSERT_TRUE(model.ok()) << model.status();

  TranslationOptions requested;
  requested.beam_size = 1;
  requested.max_length = 10;
  auto options = (*model)->ResolveOptions(requested);
  ASSERT_TRUE(options.ok()) << options.status();
  Translator translator(*model, /*intra_threads=*/1);
  auto results = translator.Translate(sources, *options);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), sources.size());
  for (const TranslationResult& result : *results) {
    ASSERT_EQ(result.hypotheses.size(), 1u);
    const std::vector<int>& ids = result.hypotheses[0].ids;
    EXPECT_GE(ids.size(), 1u);
    EXPECT_LE(ids.size(), 9u);  // max_length 10 counts the decoder start token
    for (int id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, vocab);
      EXPECT_NE(id, pad);
    }
    EXPECT_TRUE(std::isfinite(result.hypotheses[0].score));
  }
}

}  // namespace
}  // namespace ts::core
