#include "core/model/marian_model.h"

#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/layers/embeddings.h"

namespace ts::core {
namespace {

// The tied copies that checkpoints may store beside model.shared.weight.
constexpr const char* kTiedEmbeddings[] = {"model.encoder.embed_tokens.weight",
                                           "model.decoder.embed_tokens.weight",
                                           "lm_head.weight"};

// Makes model.shared.weight present, taking a tied copy if only that exists,
// and checks that every stored copy equals it.
absl::Status ResolveSharedEmbeddings(const ModelConfig& config,
                                     Weights& weights) {
  const std::vector<int64_t> shape = {config.vocab_size, config.d_model};
  if (weights.Find("model.shared.weight") == nullptr) {
    for (const char* name : kTiedEmbeddings) {
      if (const TensorView* copy = weights.Find(name)) {
        weights.Add("model.shared.weight",
                    std::vector<float>(copy->data, copy->data + copy->numel()),
                    copy->shape);
        break;
      }
    }
  }
  const TensorView* shared = weights.Find("model.shared.weight");
  if (shared == nullptr) {
    return absl::InvalidArgumentError(
        "the checkpoint has no model.shared.weight (nor a tied copy of it)");
  }
  if (shared->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor model.shared.weight has shape ", ShapeToString(shared->shape),
        ", config.json implies ", ShapeToString(shape)));
  }
  for (const char* name : kTiedEmbeddings) {
    const TensorView* copy = weights.Find(name);
    if (copy == nullptr) continue;
    if (copy->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", name, " has shape ", ShapeToString(copy->shape),
          ", config.json implies ", ShapeToString(shape)));
    }
    if (copy->data != shared->data &&
        std::memcmp(copy->data, shared->data,
                    shared->numel() * sizeof(float)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", name,
          " differs from model.shared.weight; MarianMT ties them (untied "
          "embeddings are not supported)"));
    }
    // Checked and never read again: out of the resident set.
    if (copy->data != shared->data) weights.Release(name);
  }
  return absl::OkStatus();
}

// Separate vocabularies (share_encoder_decoder_embeddings false): the
// encoder and decoder embed with tables of their own; lm_head is its own
// matrix, or (tie_word_embeddings, absent from the file) the decoder table.
absl::Status ResolveSeparateEmbeddings(const ModelConfig& config,
                                       Weights& weights) {
  const int64_t d = config.d_model;
  for (auto [name, rows] :
       {std::pair{"model.encoder.embed_tokens.weight", config.vocab_size},
        std::pair{"model.decoder.embed_tokens.weight",
                  config.decoder_vocab_size}}) {
    const TensorView* table = weights.Find(name);
    if (table == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the checkpoint has no ", name,
          " (config.json: share_encoder_decoder_embeddings false)"));
    }
    if (table->shape != std::vector<int64_t>{rows, d}) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", name, " has shape ", ShapeToString(table->shape),
          ", config.json implies ", ShapeToString({rows, d})));
    }
  }
  if (const TensorView* head = weights.Find("lm_head.weight")) {
    if (head->shape != std::vector<int64_t>{config.decoder_vocab_size, d}) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor lm_head.weight has shape ",
                       ShapeToString(head->shape), ", config.json implies ",
                       ShapeToString({config.decoder_vocab_size, d})));
    }
  } else if (!config.tie_word_embeddings) {
    return absl::InvalidArgumentError(
        "the checkpoint has no lm_head.weight and config.json says "
        "tie_word_embeddings false");
  }
  // A stray shared table is not read.
  if (weights.Find("model.shared.weight") != nullptr) {
    weights.Release("model.shared.weight");
  }
  return absl::OkStatus();
}

// Derives absent position tables; checks stored ones against the formula
// (catches a table in another layout, e.g. interleaved sin/cos, which is off
// by up to 2; bf16 rounding of a right table stays below 4e-3).
absl::Status ResolvePositions(const ModelConfig& config, Weights& weights) {
  const std::vector<float> table =
      SinusoidalPositions(config.max_position_embeddings, config.d_model);
  const std::vector<int64_t> shape = {config.max_position_embeddings,
                                      config.d_model};
  for (const char* name : {"model.encoder.embed_positions.weight",
                           "model.decoder.embed_positions.weight"}) {
    const TensorView* stored = weights.Find(name);
    if (stored == nullptr) {
      weights.Add(name, table, shape);
      continue;
    }
    if (stored->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", name, " has shape ", ShapeToString(stored->shape),
          ", config.json implies ", ShapeToString(shape)));
    }
    for (size_t i = 0; i < table.size(); ++i) {
      if (std::fabs(stored->data[i] - table[i]) > 1e-2f) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor ", name,
            " is not the sinusoidal table of MarianMT (sin in "
            "the first half of the dimensions, cos in the second); entry ",
            i, " is ", stored->data[i], ", expected ", table[i]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ops::ComputeType> MarianModel::ParseComputeType(
    const std::string& name) {
  if (name == "fp32" || name == "float32") return ops::ComputeType::kFloat32;
  if (name == "bf16" || name == "bfloat16") return ops::ComputeType::kBFloat16;
  if (name == "int8") return ops::ComputeType::kInt8;
  return absl::InvalidArgumentError(absl::StrCat(
      "compute_type \"", name, "\" is not supported (fp32, bf16, int8)"));
}

absl::StatusOr<std::shared_ptr<const MarianModel>> MarianModel::Load(
    const std::string& model_dir, ops::ComputeType compute_type) {
  auto config = ModelConfig::Load(model_dir);
  if (!config.ok()) return config.status();
  auto tokenizer = MarianTokenizer::Load(model_dir);
  if (!tokenizer.ok()) return tokenizer.status();
  auto weights = Weights::Load(model_dir);
  if (!weights.ok()) return weights.status();
  auto model = FromParts(*std::move(config), *std::move(weights),
                         *std::move(tokenizer), compute_type);
  if (!model.ok()) {
    return absl::Status(
        model.status().code(),
        absl::StrCat(model_dir, ": ", model.status().message()));
  }
  return model;
}

absl::StatusOr<std::shared_ptr<const MarianModel>> MarianModel::FromParts(
    ModelConfig config, Weights weights, MarianTokenizer tokenizer,
    ops::ComputeType compute_type) {
  if (tokenizer.vocab_size() > config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab.json has ids up to ", tokenizer.vocab_size() - 1,
                     " but config.json vocab_size is ", config.vocab_size));
  }
  if (tokenizer.target_vocab_size() > config.decoder_vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the target vocabulary has ids up to ",
        tokenizer.target_vocab_size() - 1,
        " but config.json decoder_vocab_size is ", config.decoder_vocab_size));
  }
  if (tokenizer.target_pad_id() != config.pad_token_id ||
      tokenizer.target_eos_id() != config.eos_token_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target_vocab.json has <pad> = ", tokenizer.target_pad_id(),
        " and </s> = ", tokenizer.target_eos_id(),
        ", config.json says pad_token_id ", config.pad_token_id,
        " and eos_token_id ", config.eos_token_id));
  }
  if (tokenizer.pad_id() != config.pad_token_id ||
      tokenizer.eos_id() != config.eos_token_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vocab.json has <pad> = ", tokenizer.pad_id(),
        " and </s> = ", tokenizer.eos_id(), ", config.json says pad_token_id ",
        config.pad_token_id, " and eos_token_id ", config.eos_token_id));
  }
  absl::Status status = config.share_encoder_decoder_embeddings
                            ? ResolveSharedEmbeddings(config, weights)
                            : ResolveSeparateEmbeddings(config, weights);
  if (!status.ok()) return status;
  status = ResolvePositions(config, weights);
  if (!status.ok()) return status;
  if (weights.Find("final_logits_bias") == nullptr) {
    weights.Add("final_logits_bias",
                std::vector<float>(config.decoder_vocab_size, 0.0f),
                {1, config.decoder_vocab_size});
  }
  auto model = std::shared_ptr<MarianModel>(new MarianModel());
  model->config_ = std::move(config);
  model->weights_ = std::move(weights);
  model->tokenizer_ = std::move(tokenizer);
  model->weight_bytes_ = model->weights_.TotalBytes();
  auto network =
      MarianNetwork::Build(model->config_, model->weights_, compute_type);
  if (!network.ok()) return network.status();
  model->network_ = *std::move(network);
  return std::shared_ptr<const MarianModel>(std::move(model));
}

absl::StatusOr<TranslationOptions> MarianModel::ResolveOptions(
    const TranslationOptions& options) const {
  TranslationOptions resolved = options;
  if (resolved.do_sample && resolved.beam_size == 0) resolved.beam_size = 1;
  if (resolved.beam_size == 0) resolved.beam_size = config_.num_beams;
  if (resolved.max_length == 0) resolved.max_length = config_.max_length;
  if (resolved.num_hypotheses == 0) resolved.num_hypotheses = 1;
  if (resolved.beam_size < 1 || resolved.beam_size > kMaxBeamSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("beam_size ", resolved.beam_size, " is out of range [1, ",
                     kMaxBeamSize, "]"));
  }
  // Decoder positions 0 .. max_length - 2 are fed to the model.
  const int max_length_limit = config_.max_position_embeddings + 1;
  if (resolved.max_length < 2 || resolved.max_length > max_length_limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_length ", resolved.max_length, " is out of range [2, ",
        max_length_limit, "] (max_position_embeddings + 1)"));
  }
  if (resolved.min_length < 0 || resolved.min_length > resolved.max_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_length ", resolved.min_length, " is out of range [0, ",
        resolved.max_length, "] (max_length)"));
  }
  if (resolved.do_sample) {
    if (resolved.beam_size != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "do_sample needs beam_size 1 (beam sampling is not supported), got ",
          resolved.beam_size));
    }
    if (resolved.num_hypotheses < 1 || resolved.num_hypotheses > kMaxBeamSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "num_hypotheses ", resolved.num_hypotheses, " is out of range [1, ",
          kMaxBeamSize, "] (samples per source)"));
    }
    if (resolved.top_k < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "top_k ", resolved.top_k, " must be >= 0 (0 = no top-k filter)"));
    }
    if (!(resolved.top_p > 0.0f && resolved.top_p <= 1.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("top_p ", resolved.top_p, " is out of range (0, 1]"));
    }
    if (!(resolved.temperature > 0.0f && std::isfinite(resolved.temperature))) {
      return absl::InvalidArgumentError(
          absl::StrCat("temperature ", resolved.temperature,
                       " must be a finite number > 0"));
    }
  } else if (resolved.num_hypotheses < 1 ||
             resolved.num_hypotheses > resolved.beam_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_hypotheses ", resolved.num_hypotheses, " is out of range [1, ",
        resolved.beam_size, "] (beam_size)"));
  }
  const int layers = config_.decoder_layers;
  if (resolved.attention_layer < -layers ||
      resolved.attention_layer >= layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention_layer ", resolved.attention_layer, " is out of range [",
        -layers, ", ", layers, ") (decoder_layers ", layers,
        "; negative counts from the end)"));
  }
  if (resolved.attention_layer < 0) resolved.attention_layer += layers;
  if (!std::isfinite(resolved.length_penalty)) {
    return absl::InvalidArgumentError("length_penalty must be a finite number");
  }
  if (resolved.no_repeat_ngram_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no_repeat_ngram_size ", resolved.no_repeat_ngram_size,
                     " must be >= 0 (0 = off)"));
  }
  if (!(resolved.repetition_penalty > 0.0f &&
        std::isfinite(resolved.repetition_penalty))) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty ", resolved.repetition_penalty,
                     " must be a finite number > 0 (1 = off)"));
  }
  if (!(resolved.max_length_factor >= 0.0 &&
        std::isfinite(resolved.max_length_factor))) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_length_factor ", resolved.max_length_factor,
                     " must be a finite number >= 0 (0 = off)"));
  }
  return resolved;
}

}  // namespace ts::core
