#include "server/model_check.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/model/model_memory.h"
#include "core/translator.h"

namespace ts::server {

std::string MemorySummary(const core::MarianModel& model,
                          const std::string& compute_type) {
  const core::ModelConfig& config = model.config();
  std::string text = "weights by compute type:";
  for (const auto& [name, type] :
       {std::pair{"fp32", core::ops::ComputeType::kFloat32},
        std::pair{"bf16", core::ops::ComputeType::kBFloat16},
        std::pair{"int8", core::ops::ComputeType::kInt8}}) {
    absl::StrAppend(&text, "\n  ", name, ": ",
                    core::FormatBytes(core::WeightBytes(config, type)));
  }
  absl::StrAppend(&text, "\nweights loaded (", compute_type,
                  "): ", core::FormatBytes(model.resident_weight_bytes()),
                  "\nKV cache per decoded token per row (self-attention K+V, ",
                  config.decoder_layers,
                  " decoder layers): ", core::KvCacheBytesPerToken(config),
                  " bytes", "\ncross-attention K+V per source token per row: ",
                  core::CrossKvBytesPerSourceToken(config), " bytes");
  return text;
}

absl::Status CheckModel(const std::string& model_dir,
                        const std::string& compute_type,
                        const std::string& sentence, std::ostream& out) {
  absl::StatusOr<core::ops::ComputeType> type =
      core::MarianModel::ParseComputeType(compute_type);
  if (!type.ok()) return type.status();
  const absl::Time load_start = absl::Now();
  absl::StatusOr<std::shared_ptr<const core::MarianModel>> model =
      core::MarianModel::Load(model_dir, *type);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat("cannot load model from ", model_dir, ": ",
                                     model.status().message()));
  }
  const absl::Duration load_time = absl::Now() - load_start;
  const core::ModelConfig& config = (*model)->config();
  out << "model: " << model_dir << " (" << config.name << "), loaded in "
      << absl::FormatDuration(load_time) << "\n"
      << "architecture: MarianMT, d_model " << config.d_model << ", encoder "
      << config.encoder_layers << " layers x " << config.encoder_attention_heads
      << " heads, FFN " << config.encoder_ffn_dim << "; decoder "
      << config.decoder_layers << " layers x " << config.decoder_attention_heads
      << " heads, FFN " << config.decoder_ffn_dim << "; activation "
      << config.activation_function << "\n"
      << "vocabulary: " << config.vocab_size << " entries"
      << (config.share_encoder_decoder_embeddings
              ? std::string(" (shared by encoder and decoder)")
              : absl::StrCat(" source, ", config.decoder_vocab_size,
                             " target (separate)"))
      << "; max_position_embeddings " << config.max_position_embeddings
      << "; pad " << config.pad_token_id << ", eos " << config.eos_token_id
      << ", decoder start " << config.decoder_start_token_id << "\n"
      << "generation defaults: beam " << config.num_beams << ", max_length "
      << config.max_length << "\n"
      << MemorySummary(**model, compute_type) << "\n";

  absl::StatusOr<std::vector<int>> source_ids =
      (*model)->tokenizer().EncodeSource(sentence);
  if (!source_ids.ok()) {
    return absl::Status(source_ids.status().code(),
                        absl::StrCat("cannot tokenize \"", sentence,
                                     "\": ", source_ids.status().message()));
  }
  core::TranslationOptions options;
  options.beam_size = 1;
  options.max_length = std::min(64, config.max_position_embeddings);
  absl::StatusOr<core::TranslationOptions> resolved =
      (*model)->ResolveOptions(options);
  if (!resolved.ok()) return resolved.status();
  core::Translator translator(*model, /*intra_threads=*/1);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<core::TranslationResult>> results =
      translator.Translate({*source_ids}, *resolved);
  if (!results.ok()) {
    return absl::Status(
        results.status().code(),
        absl::StrCat("cannot translate: ", results.status().message()));
  }
  const absl::Duration elapsed = absl::Now() - start;
  if (results->empty() || (*results)[0].hypotheses.empty() ||
      (*results)[0].hypotheses[0].ids.empty()) {
    return absl::InternalError("the translation is empty");
  }
  const core::Hypothesis& best = (*results)[0].hypotheses[0];
  out << "source: " << sentence << "\n"
      << "source ids: " << absl::StrJoin(*source_ids, " ") << "\n"
      << "translation (greedy): "
      << (*model)->tokenizer().DecodeTarget(best.ids) << "\n"
      << "target ids: " << absl::StrJoin(best.ids, " ") << "\n"
      << "translated in " << absl::FormatDuration(elapsed) << "\n"
      << "check: OK\n";
  return absl::OkStatus();
}

}  // namespace ts::server
