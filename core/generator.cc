#include "core/generator.h"

#include <algorithm>

#include "core/decoding/sequence_search.h"
#include "core/translator_state.h"

namespace ts::core {

struct Generator::Active {
  int64_t id = 0;
  int source = 0;  // the decoder's cross-attention source
  std::unique_ptr<SequenceSearch> search;
};

Generator::Generator(TranslatorState* state)
    : state_(state),
      decoder_(state->model->network(), state->model->config(), state->ctx,
               &state->decoder) {
  const ModelConfig& config = state->model->config();
  rules_.vocab_size = config.decoder_vocab_size;
  rules_.eos_id = config.eos_token_id;
  rules_.pad_id = config.pad_token_id;
  rules_.decoder_start_id = config.decoder_start_token_id;
  rules_.forced_eos_id = config.forced_eos_token_id;
  rules_.bad_words_ids = config.bad_words_ids;
}

Generator::~Generator() = default;

absl::StatusOr<std::vector<int64_t>> Generator::Admit(
    const std::vector<std::vector<int>>& source_ids,
    const TranslationOptions& options,
    const std::vector<SampleSource>& sample_sources) {
  absl::Status status =
      state_->CheckTranslate(source_ids, options, sample_sources);
  if (!status.ok()) return status;
  std::vector<int64_t> ids;
  if (source_ids.empty()) return ids;
  std::vector<int> lengths;
  const int src_len = state_->RunEncoder(source_ids, &lengths);
  const std::vector<int> sources = decoder_.AddSources(
      state_->encoder_hidden.data(), static_cast<int>(source_ids.size()),
      src_len, lengths);
  for (size_t b = 0; b < source_ids.size(); ++b) {
    auto active = std::make_unique<Active>();
    active->id = next_id_++;
    active->source = sources[b];
    const SampleSource sample_source =
        sample_sources.empty() ? SampleSource{options.seed, static_cast<int>(b)}
                               : sample_sources[b];
    active->search = std::make_unique<SequenceSearch>(
        rules_, options, sample_source,
        options.return_attention ? lengths[b] : 0, lengths[b]);
    decoder_.AddRow(sources[b]);
    ids.push_back(active->id);
    active_.push_back(std::move(active));
  }
  return ids;
}

int64_t Generator::AdmissionBytes(
    const std::vector<std::vector<int>>& source_ids) const {
  constexpr int kBlock = KeyValueBlocks::kBlockSize;
  int64_t blocks = 0;
  for (const auto& source : source_ids) {
    blocks += (static_cast<int64_t>(source.size()) + kBlock - 1) / kBlock + 1;
  }
  return blocks * decoder_.block_bytes();
}

void Generator::Step() {
  finished_.clear();
  streamed_.clear();
  if (active_.empty()) return;
  const int num_layers = state_->model->config().decoder_layers;
  std::vector<bool> layers(num_layers);
  bool record = false;
  std::vector<SequenceSearch*> sequences;
  for (const auto& active : active_) {
    SequenceSearch* search = active->search.get();
    sequences.push_back(search);
    if (!search->records_attention()) continue;
    int layer = search->attention_layer();
    if (layer < 0) layer += num_layers;
    layers[layer] = true;
    record = true;
  }
  decoder_.RecordCrossAttention(layers, record ? &probs_ : nullptr);
  const AttentionFeed feed{
      &probs_, decoder_.num_heads(), decoder_.src_len(), {}};
  DecodeStep(decoder_, sequences, rules_.vocab_size, record ? &feed : nullptr,
             &logits_);
  std::vector<std::unique_ptr<Active>> still_active;
  for (auto& active : active_) {
    SequenceSearch& search = *active->search;
    if (search.streams() && search.last_token() >= 0) {
      streamed_.push_back({active->id, search.last_token()});
    }
    if (search.done()) {
      finished_.push_back({active->id, search.TakeResult()});
      decoder_.ReleaseSource(active->source);
    } else {
      still_active.push_back(std::move(active));
    }
  }
  active_ = std::move(still_active);
}

void Generator::Cancel(int64_t id) {
  std::vector<int> parents;
  int row = 0;
  for (size_t i = 0; i < active_.size(); ++i) {
    const int rows = active_[i]->search->rows();
    if (active_[i]->id != id) {
      for (int r = 0; r < rows; ++r) parents.push_back(row + r);
    }
    row += rows;
  }
  auto it = std::find_if(active_.begin(), active_.end(),
                         [id](const auto& a) { return a->id == id; });
  if (it == active_.end()) return;
  decoder_.Reorder(parents);
  decoder_.ReleaseSource((*it)->source);
  active_.erase(it);
}

std::vector<std::pair<int64_t, TranslationResult>> Generator::TakeFinished() {
  return std::move(finished_);
}

}  // namespace ts::core
