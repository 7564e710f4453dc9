// Fuzzes MarianTokenizer::Load through vocab.json: the input is vocab.json,
// next to links to the demo model's source.spm and target.spm. A vocabulary
// that loads must tokenize and detokenize a sentence without going out of
// bounds.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/text/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const std::string& PrepareDir() {
  static const std::string* dir = [] {
    namespace fs = std::filesystem;
    const std::string model = ts::fuzz::DemoModelDir();
    const std::string scratch = ts::fuzz::ScratchDir();
    for (const char* file : {"source.spm", "target.spm"}) {
      fs::create_symlink(fs::absolute(fs::path(model) / file),
                         fs::path(scratch) / file);
    }
    return new std::string(scratch);
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = PrepareDir();
  ts::fuzz::WriteFile(dir + "/vocab.json", data, size);
  auto tokenizer = ts::core::MarianTokenizer::Load(dir);
  if (!tokenizer.ok()) return 0;
  const int vocab_size = tokenizer->vocab_size();
  for (int id :
       {tokenizer->eos_id(), tokenizer->unk_id(), tokenizer->pad_id()}) {
    if (id < 0 || id >= vocab_size) __builtin_trap();
  }
  for (const char* text : {"A man is riding a bicycle.", ">>deu<< Two dogs."}) {
    auto ids = tokenizer->EncodeSource(text);
    if (!ids.ok() || ids->empty() || ids->back() != tokenizer->eos_id()) {
      __builtin_trap();
    }
    for (int id : *ids) {
      if (id < 0 || id >= vocab_size) __builtin_trap();
    }
    (void)tokenizer->DecodeTarget(*ids);
  }
  std::vector<int> ids = {-1, 0, 1, 2, 3, vocab_size - 1, vocab_size, 1 << 30};
  (void)tokenizer->DecodeTarget(ids);
  return 0;
}
