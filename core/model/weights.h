// Named fp32 tensors read from safetensors files.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_WEIGHTS_H_
#define TRANSFORMER_SERVING_CORE_MODEL_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace ts::core {

// A read-only fp32 tensor, row-major; the memory belongs to a Weights.
struct TensorView {
  const float* data = nullptr;
  std::vector<int64_t> shape;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Formats a shape as "[a, b]" for error messages.
std::string ShapeToString(const std::vector<int64_t>& shape);

// Tensors by their Hugging Face names ("model.encoder.layers.0.fc1.weight").
// F32 tensors of a memory-mapped safetensors file are used in place; F16 and
// BF16 tensors are converted to fp32 at load. Movable; views stay valid.
class Weights {
 public:
  Weights();
  ~Weights();
  Weights(Weights&&) noexcept;
  Weights& operator=(Weights&&) noexcept;

  // Reads `model_dir`/model.safetensors, or every shard named by
  // `model_dir`/model.safetensors.index.json. Errors: NotFound when neither
  // file exists; DataLoss for a truncated file or data_offsets past the
  // data; InvalidArgument for a bad header, an unknown dtype or a size that
  // does not match the shape. Each message names the file and the tensor.
  static absl::StatusOr<Weights> Load(const std::string& model_dir);

  // Parses one safetensors file and adds its tensors. Errors: as Load.
  absl::Status AddSafetensorsFile(const std::string& path);

  // Adds (or replaces) a tensor that this object owns.
  void Add(const std::string& name, std::vector<float> values,
           std::vector<int64_t> shape);

  // Removes tensor `name` and gives its memory back: an owned buffer is
  // freed; the pages wholly inside a mapped tensor leave the resident set
  // (madvise MADV_DONTNEED; the read-only mapping stays valid and would read
  // the file again). For tensors that were copied elsewhere (packed matmul
  // weights). Views of it must not be used afterwards. Unknown names are
  // ignored.
  void Release(const std::string& name);

  // Gives back the memory of the first `rows` rows (along dimension 0) of a
  // mapped tensor, as Release does, while the tensor stays: for a matrix
  // converted block by block (PackedWeights::Pack). Those rows must not be
  // read again. Owned tensors keep their buffer until Release; unknown
  // names are ignored.
  void ReleaseRows(const std::string& name, int64_t rows);

  // The tensor called `name`, or nullptr.
  const TensorView* Find(const std::string& name) const;

  // Names of all tensors, sorted.
  std::vector<std::string> Names() const;

  // Bytes of tensor data held (mapped or owned).
  int64_t TotalBytes() const;

 private:
  struct MappedFile;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::unordered_map<const float*, std::unique_ptr<float[]>> owned_;
  std::unordered_map<std::string, TensorView> tensors_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_WEIGHTS_H_
