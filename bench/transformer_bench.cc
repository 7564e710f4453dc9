// transformer-bench: the core engine offline, without gRPC. Prints target
// tokens/s, sentences/s, encoder and decoder time, peak RSS, the CPU model
// and the ISA oneDNN dispatches to (and that of the engine's own kernels);
// optionally writes the figures as JSON.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "core/model/marian_model.h"
#include "core/ops/kernels.h"
#include "core/translator.h"
#include "nlohmann/json.hpp"
#include "oneapi/dnnl/dnnl.hpp"
#include "tests/support/synthetic_weights.h"

ABSL_FLAG(std::string, model_dir, "models/marian-en-de-multi30k",
          "Hugging Face MarianMT folder (config.json, vocab.json, *.spm and, "
          "unless --synthetic_weights, model.safetensors)");
ABSL_FLAG(bool, synthetic_weights, false,
          "Fill every tensor config.json implies with seeded random values");
ABSL_FLAG(std::string, input, "",
          "Source sentences, one per line; default: random token ids");
ABSL_FLAG(int, source_length, 20, "Tokens per random source (no --input)");
ABSL_FLAG(int, num_sentences, 0,
          "Sentences to translate per run (default: --batch_size, or every "
          "line of --input)");
ABSL_FLAG(int, batch_size, 32, "Sentences per Translate call");
ABSL_FLAG(int, beam_size, 1, "1 = greedy search");
ABSL_FLAG(int, output_length, 0,
          "Force exactly this many generated tokens per sentence (eos banned "
          "until the last); 0 = decode until eos (max_length 128, as the "
          "golden files)");
ABSL_FLAG(int, threads, 2, "OpenMP threads");
ABSL_FLAG(bool, return_attention, false,
          "Record each hypothesis's cross-attention (the last decoder layer, "
          "averaged over heads), as a request with return_attention does");
ABSL_FLAG(std::string, compute_type, "fp32",
          "Precision of the matmuls: fp32, bf16 or int8");
ABSL_FLAG(int, repeat, 9, "Timed runs; the median is reported");
ABSL_FLAG(std::string, output, "", "Write translations of the last run here");
ABSL_FLAG(std::string, json, "", "Write the figures as JSON to this file");

namespace {

using Clock = std::chrono::steady_clock;

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      return line.substr(line.find(':') + 2);
    }
  }
  return "unknown";
}

std::string IsaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Benchmarks the translation engine offline.\n"
      "  transformer-bench --model_dir=DIR [--synthetic_weights] "
      "[--input=FILE] --batch_size=N --beam_size=N [--output_length=N] "
      "--threads=N [--json=FILE]");
  absl::ParseCommandLine(argc, argv);
  using ts::core::MarianModel;
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  const auto compute_type =
      MarianModel::ParseComputeType(absl::GetFlag(FLAGS_compute_type));
  if (!compute_type.ok()) {
    std::fprintf(stderr, "transformer-bench: %s\n",
                 compute_type.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const MarianModel>> model;
  if (absl::GetFlag(FLAGS_synthetic_weights)) {
    auto config = ts::core::ModelConfig::Load(model_dir);
    auto tokenizer = ts::core::MarianTokenizer::Load(model_dir);
    if (!config.ok() || !tokenizer.ok()) {
      std::fprintf(stderr, "transformer-bench: %s\n",
                   (!config.ok() ? config.status() : tokenizer.status())
                       .ToString()
                       .c_str());
      return 1;
    }
    // Written to a file and memory-mapped as a real checkpoint is, so peak
    // RSS is what a user would see; the file goes once mapped.
    std::string dir_template =
        (std::filesystem::temp_directory_path() / "transformer-bench-XXXXXX")
            .string();
    if (mkdtemp(dir_template.data()) == nullptr) {
      std::fprintf(stderr, "transformer-bench: cannot create %s\n",
                   dir_template.c_str());
      return 1;
    }
    const std::filesystem::path dir = dir_template;
    absl::Status written = ts::core::WriteSyntheticSafetensors(
        *config, 1234, (dir / "model.safetensors").string());
    auto weights = written.ok() ? ts::core::Weights::Load(dir.string())
                                : absl::StatusOr<ts::core::Weights>(written);
    std::filesystem::remove_all(dir);
    if (!weights.ok()) {
      std::fprintf(stderr, "transformer-bench: %s\n",
                   weights.status().ToString().c_str());
      return 1;
    }
    model = MarianModel::FromParts(*config, *std::move(weights),
                                   *std::move(tokenizer), *compute_type);
  } else {
    model = MarianModel::Load(model_dir, *compute_type);
  }
  if (!model.ok()) {
    std::fprintf(stderr, "transformer-bench: %s\n",
                 model.status().ToString().c_str());
    return 1;
  }
  const auto& config = (*model)->config();

  // Sources: tokenized lines of --input, or random ids (never pad or eos).
  std::vector<std::vector<int>> sources;
  const int batch_size = std::max(1, absl::GetFlag(FLAGS_batch_size));
  if (!absl::GetFlag(FLAGS_input).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_input));
    if (!in) {
      std::fprintf(stderr, "transformer-bench: cannot read %s\n",
                   absl::GetFlag(FLAGS_input).c_str());
      return 1;
    }
    std::string line;
    while (std::getline(in, line)) {
      auto ids = (*model)->tokenizer().EncodeSource(line);
      if (!ids.ok()) {
        std::fprintf(stderr, "transformer-bench: %s\n",
                     ids.status().ToString().c_str());
        return 1;
      }
      sources.push_back(*ids);
    }
  } else {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> id(2, config.vocab_size - 2);
    const int n = absl::GetFlag(FLAGS_num_sentences) > 0
                      ? absl::GetFlag(FLAGS_num_sentences)
                      : batch_size;
    for (int i = 0; i < n; ++i) {
      std::vector<int> ids(absl::GetFlag(FLAGS_source_length) - 1);
      for (int& v : ids) {
        do v = id(rng);
        while (v == config.pad_token_id || v == config.eos_token_id);
      }
      ids.push_back(config.eos_token_id);
      sources.push_back(ids);
    }
  }
  if (absl::GetFlag(FLAGS_num_sentences) > 0 &&
      static_cast<int>(sources.size()) > absl::GetFlag(FLAGS_num_sentences)) {
    sources.resize(absl::GetFlag(FLAGS_num_sentences));
  }

  ts::core::TranslationOptions options;
  options.beam_size = absl::GetFlag(FLAGS_beam_size);
  options.return_attention = absl::GetFlag(FLAGS_return_attention);
  const int output_length = absl::GetFlag(FLAGS_output_length);
  if (output_length > 0) {
    // max_length counts the start token; eos is banned before the last step
    // and forced at it, so every sentence gets exactly output_length tokens.
    options.max_length = output_length + 1;
    options.min_length = output_length;
  } else {
    options.max_length = std::min(128, config.max_length);
  }
  auto resolved = (*model)->ResolveOptions(options);
  if (!resolved.ok()) {
    std::fprintf(stderr, "transformer-bench: %s\n",
                 resolved.status().ToString().c_str());
    return 2;
  }

  // Batches sorted by length, as the server's scheduler forms them.
  std::vector<size_t> order(sources.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return sources[a].size() < sources[b].size();
  });
  std::vector<std::vector<std::vector<int>>> batches;
  for (size_t start = 0; start < order.size(); start += batch_size) {
    std::vector<std::vector<int>> batch;
    for (size_t i = start; i < std::min(order.size(), start + batch_size);
         ++i) {
      batch.push_back(sources[order[i]]);
    }
    batches.push_back(std::move(batch));
  }

  ts::core::Translator translator(*model, absl::GetFlag(FLAGS_threads));
  std::vector<ts::core::TranslationResult> results(sources.size());
  auto run = [&](double* encoder_seconds, int64_t* tokens) {
    *tokens = 0;
    *encoder_seconds = 0;
    size_t offset = 0;
    for (const auto& batch : batches) {
      const auto t0 = Clock::now();
      auto states = translator.EncoderHiddenStates(batch);
      *encoder_seconds +=
          std::chrono::duration<double>(Clock::now() - t0).count();
      auto out = translator.Translate(batch, *resolved);
      if (!states.ok() || !out.ok()) {
        std::fprintf(stderr, "transformer-bench: %s\n",
                     out.status().ToString().c_str());
        std::exit(1);
      }
      for (size_t i = 0; i < out->size(); ++i) {
        *tokens += (*out)[i].hypotheses[0].ids.size();
        results[order[offset + i]] = (*out)[i];
      }
      offset += batch.size();
    }
  };
  double encoder_seconds;
  int64_t tokens;
  run(&encoder_seconds, &tokens);  // warm-up: primitive creation, page-in
  std::vector<double> totals, encoders;
  for (int r = 0; r < std::max(1, absl::GetFlag(FLAGS_repeat)); ++r) {
    const auto t0 = Clock::now();
    run(&encoder_seconds, &tokens);
    // The encoder runs twice per batch (once alone, to time it): take the
    // extra pass out of the total.
    const double total =
        std::chrono::duration<double>(Clock::now() - t0).count() -
        encoder_seconds;
    totals.push_back(total);
    encoders.push_back(encoder_seconds);
  }
  const double seconds = Median(totals);
  const double encoder = Median(encoders);
  nlohmann::json report = {
      {"cpu", CpuModel()},
      {"isa", IsaName(dnnl::get_effective_cpu_isa())},
      {"kernel_isa", ts::core::ops::kernels::IsaName()},
      {"model_dir", model_dir},
      {"synthetic_weights", absl::GetFlag(FLAGS_synthetic_weights)},
      {"compute_type", absl::GetFlag(FLAGS_compute_type)},
      {"threads", absl::GetFlag(FLAGS_threads)},
      {"batch_size", batch_size},
      {"beam_size", resolved->beam_size},
      {"return_attention", resolved->return_attention},
      {"sentences", sources.size()},
      {"target_tokens", tokens},
      {"seconds", seconds},
      {"encoder_seconds", encoder},
      {"decoder_seconds", seconds - encoder},
      {"target_tokens_per_second", tokens / seconds},
      {"sentences_per_second", sources.size() / seconds},
      {"peak_rss_mib", PeakRssMiB()},
      {"weight_mib", (*model)->weight_bytes() / 1048576.0},
      {"repeat", totals.size()}};
  std::printf("%s\n", report.dump(2).c_str());
  if (!absl::GetFlag(FLAGS_json).empty()) {
    std::ofstream(absl::GetFlag(FLAGS_json)) << report.dump(2) << "\n";
  }
  if (!absl::GetFlag(FLAGS_output).empty()) {
    std::ofstream out(absl::GetFlag(FLAGS_output));
    for (const auto& result : results) {
      out << (*model)->tokenizer().DecodeTarget(result.hypotheses[0].ids)
          << "\n";
    }
  }
  return 0;
}
