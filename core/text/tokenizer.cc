#include "core/text/tokenizer.h"

#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ts::core {

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  while (i < text.size()) {
    const unsigned char c = s[i];
    int extra;
    uint32_t min_value;
    uint32_t value;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1, min_value = 0x80, value = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, min_value = 0x800, value = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, min_value = 0x10000, value = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) {  // truncated sequence
      return false;
    }
    for (int k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      value = (value << 6) | (s[i + k] & 0x3f);
    }
    if (value < min_value || value > 0x10ffff ||
        (value >= 0xd800 && value <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

namespace {

absl::StatusOr<std::unique_ptr<SentencePieceModel>> LoadSpm(
    const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(
        absl::StrCat("missing tokenizer file ", path.string()));
  }
  std::string error;
  auto spm = SentencePieceModel::Load(path.string(), &error);
  if (spm == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": not a SentencePiece model: ", error));
  }
  return spm;
}

}  // namespace

MarianTokenizer::MarianTokenizer() = default;
MarianTokenizer::~MarianTokenizer() = default;
MarianTokenizer::MarianTokenizer(MarianTokenizer&&) noexcept = default;
MarianTokenizer& MarianTokenizer::operator=(MarianTokenizer&&) noexcept =
    default;

namespace {

// Reads a vocab.json-style file (piece -> id) into both directions and the
// ids of </s>, <unk> and <pad>.
absl::Status ReadVocabulary(const std::filesystem::path& vocab_path,
                            std::unordered_map<std::string, int>* piece_to_id,
                            std::vector<std::string>* id_to_piece, int* eos_id,
                            int* unk_id, int* pad_id) {
  if (!std::filesystem::exists(vocab_path)) {
    return absl::NotFoundError(
        absl::StrCat("missing tokenizer file ", vocab_path.string()));
  }
  std::ifstream in(vocab_path);
  nlohmann::json vocab = nlohmann::json::parse(in, nullptr, false);
  if (vocab.is_discarded() || !vocab.is_object() || vocab.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        vocab_path.string(), ": not a JSON object of piece -> id"));
  }
  // Ids are dense in real vocabularies; a bound tied to the entry count
  // keeps a hostile file from making us allocate for ids it does not have.
  const int64_t max_allowed_id =
      std::max<int64_t>(2 * static_cast<int64_t>(vocab.size()), 1024);
  int max_id = -1;
  for (const auto& [piece, id] : vocab.items()) {
    if (id.is_number_integer() && id.get<int64_t>() >= max_allowed_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          vocab_path.string(), ": id ", id.get<int64_t>(), " of piece \"",
          piece, "\" is past twice the number of entries (", vocab.size(),
          "); ids must be nearly dense"));
    }
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= (1 << 24)) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab_path.string(), ": id of piece \"", piece,
                       "\" is not an integer in [0, 16777216)"));
    }
    max_id = std::max(max_id, id.get<int>());
  }
  id_to_piece->assign(max_id + 1, std::string());
  piece_to_id->clear();
  std::vector<bool> seen(max_id + 1, false);
  for (const auto& [piece, id] : vocab.items()) {
    const int value = id.get<int>();
    if (seen[value]) {
      return absl::InvalidArgumentError(absl::StrCat(
          vocab_path.string(), ": id ", value, " is given to two pieces"));
    }
    seen[value] = true;
    (*id_to_piece)[value] = piece;
    (*piece_to_id)[piece] = value;
  }
  for (auto [piece, field] :
       {std::pair{"</s>", eos_id}, std::pair{"<unk>", unk_id},
        std::pair{"<pad>", pad_id}}) {
    auto it = piece_to_id->find(piece);
    if (it == piece_to_id->end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          vocab_path.string(), ": the vocabulary has no ", piece, " entry"));
    }
    *field = it->second;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MarianTokenizer> MarianTokenizer::Load(
    const std::string& model_dir) {
  namespace fs = std::filesystem;
  MarianTokenizer tokenizer;
  absl::Status status = ReadVocabulary(
      fs::path(model_dir) / "vocab.json", &tokenizer.piece_to_id_,
      &tokenizer.id_to_piece_, &tokenizer.eos_id_, &tokenizer.unk_id_,
      &tokenizer.pad_id_);
  if (!status.ok()) return status;
  // Separate vocabularies (MarianTokenizer separate_vocabs): target ids map
  // to pieces through target_vocab.json.
  const fs::path target_vocab = fs::path(model_dir) / "target_vocab.json";
  if (fs::exists(target_vocab)) {
    std::unordered_map<std::string, int> target_piece_to_id;
    int unk = 0;
    status = ReadVocabulary(
        target_vocab, &target_piece_to_id, &tokenizer.target_id_to_piece_,
        &tokenizer.target_eos_id_, &unk, &tokenizer.target_pad_id_);
    if (!status.ok()) return status;
  } else {
    tokenizer.target_id_to_piece_ = tokenizer.id_to_piece_;
    tokenizer.target_eos_id_ = tokenizer.eos_id_;
    tokenizer.target_pad_id_ = tokenizer.pad_id_;
  }
  auto source = LoadSpm(fs::path(model_dir) / "source.spm");
  if (!source.ok()) return source.status();
  auto target = LoadSpm(fs::path(model_dir) / "target.spm");
  if (!target.ok()) return target.status();
  tokenizer.source_spm_ = std::move(*source);
  tokenizer.target_spm_ = std::move(*target);
  return tokenizer;
}

absl::StatusOr<std::vector<int>> MarianTokenizer::EncodeSource(
    std::string_view text) const {
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("text is not valid UTF-8");
  }
  std::vector<std::string> pieces;
  // A leading ">>xxx<<" target-language token of multilingual models stays
  // one piece, as MarianTokenizer's language_code_re (">>.+<<") keeps it.
  std::string rest(text);
  if (rest.size() >= 4 && rest.compare(0, 2, ">>") == 0) {
    const size_t close = rest.rfind("<<");
    if (close != std::string::npos && close >= 3) {
      pieces.push_back(rest.substr(0, close + 2));
      rest = rest.substr(close + 2);
    }
  }
  std::vector<std::string> spm_pieces;
  std::string error;
  if (!source_spm_->Encode(rest, &spm_pieces, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SentencePiece could not encode the text: ", error));
  }
  pieces.insert(pieces.end(), spm_pieces.begin(), spm_pieces.end());
  std::vector<int> ids;
  ids.reserve(pieces.size() + 1);
  for (const std::string& piece : pieces) {
    auto it = piece_to_id_.find(piece);
    ids.push_back(it == piece_to_id_.end() ? unk_id_ : it->second);
  }
  ids.push_back(eos_id_);
  return ids;
}

absl::StatusOr<EncodedSource> MarianTokenizer::EncodeSourceWithRanges(
    std::string_view text) const {
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("text is not valid UTF-8");
  }
  EncodedSource encoded;
  // The language token as in EncodeSource.
  size_t offset = 0;
  if (text.size() >= 4 && text.compare(0, 2, ">>") == 0) {
    const size_t close = text.rfind("<<");
    if (close != std::string_view::npos && close >= 3) {
      auto it = piece_to_id_.find(std::string(text.substr(0, close + 2)));
      encoded.ids.push_back(it == piece_to_id_.end() ? unk_id_ : it->second);
      encoded.ranges.push_back({0, close + 2});
      offset = close + 2;
    }
  }
  std::vector<std::string> pieces;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::string error;
  if (!source_spm_->EncodeWithRanges(text.substr(offset), &pieces, &ranges,
                                     &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SentencePiece could not encode the text: ", error));
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    auto it = piece_to_id_.find(pieces[i]);
    encoded.ids.push_back(it == piece_to_id_.end() ? unk_id_ : it->second);
    encoded.ranges.push_back(
        {offset + ranges[i].first, offset + ranges[i].second});
  }
  encoded.ids.push_back(eos_id_);
  encoded.ranges.push_back({text.size(), text.size()});
  return encoded;
}

DecodedTarget MarianTokenizer::DecodeTargetWithRanges(
    absl::Span<const int> ids) const {
  DecodedTarget decoded;
  std::vector<std::string> pieces;
  std::vector<int> piece_of_id(ids.size(), -1);  // index in pieces, or -1
  for (size_t i = 0; i < ids.size(); ++i) {
    const int id = ids[i];
    if (id == target_eos_id_ || id == target_pad_id_) continue;
    if (id < 0 || id >= static_cast<int>(target_id_to_piece_.size())) continue;
    piece_of_id[i] = static_cast<int>(pieces.size());
    pieces.push_back(target_id_to_piece_[id]);
  }
  std::vector<std::pair<size_t, size_t>> ranges;
  if (!target_spm_->DecodeWithRanges(pieces, &decoded.text, &ranges) ||
      ranges.size() != pieces.size()) {
    decoded.text.clear();
    ranges.assign(pieces.size(), {0, 0});
  }
  size_t end = 0;  // end of the text decoded so far
  decoded.ranges.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (piece_of_id[i] < 0) {
      decoded.ranges.push_back({end, end});
      continue;
    }
    const auto [begin, piece_end] = ranges[piece_of_id[i]];
    decoded.ranges.push_back({begin, piece_end});
    if (piece_end > end) end = piece_end;
  }
  return decoded;
}

std::vector<std::string> MarianTokenizer::Pieces(
    absl::Span<const int> ids) const {
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int id : ids) {
    pieces.push_back(id >= 0 && id < static_cast<int>(id_to_piece_.size())
                         ? id_to_piece_[id]
                         : std::string());
  }
  return pieces;
}

std::string MarianTokenizer::DecodeTarget(absl::Span<const int> ids) const {
  std::vector<std::string> pieces;
  for (int id : ids) {
    if (id == target_eos_id_ || id == target_pad_id_) continue;
    if (id < 0 || id >= static_cast<int>(target_id_to_piece_.size())) continue;
    pieces.push_back(target_id_to_piece_[id]);
  }
  std::string text;
  if (!target_spm_->Decode(pieces, &text)) return std::string();
  return text;
}

}  // namespace ts::core
