// `transformer-client translate`: texts in, one translation per line out.
#ifndef TRANSFORMER_SERVING_CLIENT_TRANSLATE_COMMAND_H_
#define TRANSFORMER_SERVING_CLIENT_TRANSLATE_COMMAND_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/progress.h"
#include "grpcpp/grpcpp.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::client {

struct TranslateCommandOptions {
  // The model of every request (and its x-model metadata); empty = the
  // server's default.
  ModelSelection model;
  int beam_size = 0;             // 0 = the model's default
  int max_length = 0;            // tokens; 0 = the model's default
  int num_hypotheses = 0;        // 0 = 1; with `sample`, samples per text
  int no_repeat_ngram_size = 0;  // 0 = off
  std::optional<float> repetition_penalty;  // unset = off (1)
  // Sampling (TranslationOptions.do_sample and its fields).
  bool sample = false;
  int top_k = 0;             // 0 = no top-k filter
  float top_p = 1.0f;        // 1 = no top-p filter
  float temperature = 1.0f;  // > 0
  // Request k (texts k * texts_per_request ...) samples with seed + k, so a
  // file gives the same samples again for the same seed and
  // texts_per_request; unset: the server picks each request's seed.
  std::optional<uint64_t> seed;
  // How the server reads each text (TranslationOptions.input_format):
  // sentences split (TEXT, the default), one sequence (SENTENCE), or HTML.
  transformer::v1::InputFormat input_format =
      transformer::v1::INPUT_FORMAT_TEXT;
  transformer::v1::NewlineMode newline_mode =
      transformer::v1::NEWLINE_MODE_BREAK;
  // Each text is a whole document (--document): its translation is written
  // as the server returns it, with the document's own line breaks and no
  // newline added.
  bool document = false;
  bool json = false;  // JSON lines instead of plain text
  // Ask for the cross-attention and print JSON lines with it (implies json):
  // source_tokens, target_tokens, attention [target][source], alignment.
  bool attention = false;
  std::optional<int> attention_layer;  // decoder layer; unset = the last
  // If set, write the first text's best hypothesis as an SVG heatmap here
  // (asks for the attention too; the printed lines stay as chosen).
  std::string heatmap;
  int texts_per_request = 32;
  int concurrency = 4;  // requests in flight
  // TranslateStream, one request at a time (concurrency unused): each line
  // is written as its text decodes, flushed after every piece; plain text
  // only (not json, attention or heatmap).
  bool stream = false;
  absl::Duration timeout = absl::Minutes(5);  // per request
};

// Translates `texts` in requests of at most texts_per_request texts, with up
// to `concurrency` requests in flight, and writes one line per text to `out`
// in input order, as soon as all earlier lines are written: the best
// translation (the first sample when sampling), or with `json` an object
// {source, translation, token_ids, score, hypotheses?, seed?, segments?}
// (seed: the one the text's samples were drawn with; segments, for a text of
// several sentences: [{source, translation, source_begin, source_end}]),
// plus with `attention` {source_tokens,
// target_tokens, attention, alignment} per hypothesis. Calls go over
// `channel`; `progress` counts the lines written. Returns an ExitCode
// (client/exit_codes.h): 0, RPC error after writing the first failed call to
// `err` (lines before the failed request are still written), or I/O error if
// `out` or the heatmap file fails. With `stream`, lines are written piece by
// piece: the first unfinished text of the request streams, later texts wait
// for it; a failed call ends the partial line.
int RunTranslate(const TranslateCommandOptions& options,
                 const std::shared_ptr<grpc::Channel>& channel,
                 const std::vector<std::string>& texts, std::ostream& out,
                 std::ostream& err, Progress* progress);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_TRANSLATE_COMMAND_H_
