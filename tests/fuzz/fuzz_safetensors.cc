// Fuzzes the safetensors reader: the input is a whole file (8-byte header
// length, JSON header, data). Every tensor accepted must lie inside the
// mapped data, which ASan checks as the target reads all its values.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/model/weights.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = ts::fuzz::ScratchDir() + "/model.safetensors";
  ts::fuzz::WriteFile(path, data, size);
  ts::core::Weights weights;
  if (!weights.AddSafetensorsFile(path).ok()) return 0;
  volatile float sink = 0.0f;
  for (const std::string& name : weights.Names()) {
    const ts::core::TensorView* view = weights.Find(name);
    if (view == nullptr) __builtin_trap();
    const int64_t numel = view->numel();
    if (numel < 0) __builtin_trap();
    for (int64_t i = 0; i < numel; ++i) sink = sink + view->data[i];
  }
  (void)weights.TotalBytes();
  return 0;
}
