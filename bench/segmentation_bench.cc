// The cost of sentence segmentation (core/text/sentence_splitter.h) per MB:
// the golden sources of the demo model joined into a document of paragraphs
// (1-6 sentences, single spaces; blank lines between paragraphs), repeated
// to about 1 MB, segmented whole (kBreak and, wrapped at 72 columns,
// kSpace); and each golden source as its own text (a request of one
// sentence: the per-call cost). Google Benchmark; bytes/s is the figure.
//
//   cmake -B build -DTS_BUILD_BENCHMARKS=ON
//   cmake --build build --target segmentation_bench
//   build/bin/segmentation_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/text/sentence_splitter.h"
#include "nlohmann/json.hpp"

namespace ts::core::text {
namespace {

std::vector<std::string> GoldenSources() {
  std::ifstream in(std::string(TS_DEMO_MODEL_DIR) +
                   "/golden/translations.jsonl");
  std::vector<std::string> sources;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) sources.push_back(nlohmann::json::parse(line)["source"]);
  }
  if (sources.empty()) std::fprintf(stderr, "no golden sources\n");
  return sources;
}

// Paragraphs of 1-6 sources, about `bytes` long; `wrap` > 0 breaks lines
// at the last space before that column (wrapped text).
std::string Document(size_t bytes, size_t wrap) {
  const std::vector<std::string> sources = GoldenSources();
  std::string document;
  size_t next = 0;
  size_t column = 0;
  for (int paragraph = 0; document.size() < bytes; ++paragraph) {
    if (paragraph > 0) document += "\n\n";
    column = 0;
    const int sentences = 1 + paragraph % 6;
    for (int s = 0; s < sentences && !sources.empty(); ++s) {
      const std::string& source = sources[next++ % sources.size()];
      size_t word_begin = 0;
      while (word_begin < source.size()) {
        size_t word_end = source.find(' ', word_begin);
        if (word_end == std::string::npos) word_end = source.size();
        const size_t length = word_end - word_begin;
        if (column > 0) {
          if (wrap > 0 && column + 1 + length > wrap) {
            document += '\n';
            column = 0;
          } else {
            document += ' ';
            ++column;
          }
        }
        document.append(source, word_begin, length);
        column += length;
        word_begin = word_end + 1;
      }
    }
  }
  return document;
}

const SentenceSplitter& English() {
  static const SentenceSplitter* splitter =
      new SentenceSplitter(*SentenceSplitter::Create("en"));
  return *splitter;
}

void BM_SegmentDocument(benchmark::State& state) {
  const NewlineMode mode =
      state.range(0) == 0 ? NewlineMode::kBreak : NewlineMode::kSpace;
  const std::string document =
      Document(1 << 20, mode == NewlineMode::kSpace ? 72 : 0);
  size_t sentences = 0;
  for (auto _ : state) {
    std::vector<SentenceSpan> spans = English().Segment(document, mode);
    sentences = spans.size();
    benchmark::DoNotOptimize(spans.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(document.size()));
  state.counters["sentences"] = static_cast<double>(sentences);
  state.counters["sentences/s"] =
      benchmark::Counter(static_cast<double>(sentences),
                         benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(mode == NewlineMode::kBreak ? "kBreak" : "kSpace, 72 columns");
}
BENCHMARK(BM_SegmentDocument)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_SegmentEachSource(benchmark::State& state) {
  const std::vector<std::string> sources = GoldenSources();
  size_t bytes = 0;
  for (const std::string& source : sources) bytes += source.size();
  for (auto _ : state) {
    for (const std::string& source : sources) {
      std::vector<SentenceSpan> spans = English().Segment(source);
      benchmark::DoNotOptimize(spans.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(bytes));
  state.counters["texts/s"] =
      benchmark::Counter(static_cast<double>(sources.size()),
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SegmentEachSource)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ts::core::text

BENCHMARK_MAIN();
