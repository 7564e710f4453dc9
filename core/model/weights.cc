#include "core/model/weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace ts::core {
namespace {

// The largest header we accept; real headers are a few hundred KiB.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: renormalize
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3ffu;
      bits = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace

std::string ShapeToString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

struct Weights::MappedFile {
  void* data = nullptr;
  size_t size = 0;
  ~MappedFile() {
    if (data != nullptr && size > 0) munmap(data, size);
  }
};

Weights::Weights() = default;
Weights::~Weights() = default;
Weights::Weights(Weights&&) noexcept = default;
Weights& Weights::operator=(Weights&&) noexcept = default;

absl::StatusOr<Weights> Weights::Load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  Weights weights;
  const fs::path single = fs::path(model_dir) / "model.safetensors";
  const fs::path index = fs::path(model_dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    absl::Status status = weights.AddSafetensorsFile(single.string());
    if (!status.ok()) return status;
    return weights;
  }
  if (!fs::exists(index)) {
    return absl::NotFoundError(absl::StrCat(
        "no model.safetensors or model.safetensors.index.json in ", model_dir));
  }
  std::ifstream in(index);
  nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  if (json.is_discarded() || !json.is_object() ||
      !json.contains("weight_map") || !json["weight_map"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        index.string(), ": not JSON with a \"weight_map\" object"));
  }
  std::set<std::string> shards;
  for (const auto& [name, file] : json["weight_map"].items()) {
    if (!file.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          index.string(), ": weight_map entry ", name, " is not a file name"));
    }
    const std::string shard = file.get<std::string>();
    if (shard.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(index.string(), ": shard name ", shard,
                       " must be a plain file name"));
    }
    shards.insert(shard);
  }
  for (const std::string& shard : shards) {
    absl::Status status =
        weights.AddSafetensorsFile((fs::path(model_dir) / shard).string());
    if (!status.ok()) return status;
  }
  for (const auto& [name, file] : json["weight_map"].items()) {
    if (weights.Find(name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(index.string(), ": tensor ", name, " is not in shard ",
                       file.get<std::string>()));
    }
  }
  return weights;
}

absl::Status Weights::AddSafetensorsFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("cannot stat ", path));
  }
  auto file = std::make_unique<MappedFile>();
  file->size = static_cast<size_t>(st.st_size);
  if (file->size < 8) {
    close(fd);
    return absl::DataLossError(absl::StrCat(
        path, ": ", file->size, " bytes, too short for a safetensors header"));
  }
  file->data = mmap(nullptr, file->size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (file->data == MAP_FAILED) {
    file->data = nullptr;
    return absl::InternalError(absl::StrCat("cannot mmap ", path));
  }
  const auto* bytes = static_cast<const uint8_t*>(file->data);
  const size_t file_size = file->size;
  // Owned from here on, so views into the mapping stay valid even if a later
  // tensor of this file is rejected.
  files_.push_back(std::move(file));
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian on x86-64
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8) {
    return absl::DataLossError(absl::StrCat(
        path, ": header length ", header_size, " exceeds the file size ",
        file_size, " (truncated or not a safetensors file)"));
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes + 8),
                                header_size);
  nlohmann::json json = nlohmann::json::parse(header, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": safetensors header is not a JSON object"));
  }
  const uint8_t* data_start = bytes + 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;

  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") continue;
    const std::string where = absl::StrCat(path, ": tensor ", name);
    if (!entry.is_object() || !entry.contains("dtype") ||
        !entry.contains("shape") || !entry.contains("data_offsets") ||
        !entry["dtype"].is_string() || !entry["shape"].is_array() ||
        !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": entry needs dtype, shape and two data_offsets"));
    }
    const std::string dtype = entry["dtype"].get<std::string>();
    size_t element_size;
    if (dtype == "F32") {
      element_size = 4;
    } else if (dtype == "F16" || dtype == "BF16") {
      element_size = 2;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": unsupported dtype ", dtype, " (F32, F16 and BF16 are)"));
    }
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& dim : entry["shape"]) {
      if (!dim.is_number_unsigned() || dim.get<uint64_t>() > (1ull << 40)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": shape has a bad dimension"));
      }
      const uint64_t size = dim.get<uint64_t>();
      shape.push_back(static_cast<int64_t>(size));
      // Checked before multiplying, so the product cannot wrap around.
      if (size != 0 && numel > (1ull << 40) / size) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": shape has more than 2^40 elements"));
      }
      numel *= size;
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": data_offsets must be non-negative integers"));
    }
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return absl::DataLossError(absl::StrCat(
          where, ": data_offsets [", begin, ", ", end,
          "] out of range of the data section (", data_size, " bytes)"));
    }
    if (end - begin != numel * element_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", end - begin, " bytes do not match shape ",
                       ShapeToString(shape), " of ", dtype));
    }
    const uint8_t* src = data_start + begin;
    if (dtype == "F32" &&
        reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
      tensors_[name] = TensorView{reinterpret_cast<const float*>(src), shape};
      continue;
    }
    std::vector<float> values(numel);
    for (uint64_t i = 0; i < numel; ++i) {
      if (dtype == "F32") {
        std::memcpy(&values[i], src + 4 * i, 4);
      } else {
        uint16_t half;
        std::memcpy(&half, src + 2 * i, 2);
        values[i] = dtype == "F16" ? HalfToFloat(half) : Bf16ToFloat(half);
      }
    }
    Add(name, std::move(values), shape);
  }
  return absl::OkStatus();
}

void Weights::Add(const std::string& name, std::vector<float> values,
                  std::vector<int64_t> shape) {
  auto buffer = std::make_unique<float[]>(values.size());
  std::copy(values.begin(), values.end(), buffer.get());
  tensors_[name] = TensorView{buffer.get(), std::move(shape)};
  owned_.emplace(buffer.get(), std::move(buffer));
}

namespace {

// MADV_DONTNEED on the pages wholly inside [data, data + bytes) of a
// read-only mapping: they leave the resident set, and would read the file
// again. Best effort: on failure the pages just stay resident.
void DropPages(const float* data, int64_t bytes) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + static_cast<uintptr_t>(bytes)) / page * page;
  if (last > first) {
    madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
}

}  // namespace

void Weights::Release(const std::string& name) {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return;
  const float* data = it->second.data;
  const int64_t bytes =
      it->second.numel() * static_cast<int64_t>(sizeof(float));
  tensors_.erase(it);
  if (owned_.erase(data) > 0) return;
  DropPages(data, bytes);
}

void Weights::ReleaseRows(const std::string& name, int64_t rows) {
  auto it = tensors_.find(name);
  if (it == tensors_.end() || owned_.count(it->second.data) > 0) return;
  const TensorView& view = it->second;
  if (view.shape.empty() || view.shape[0] == 0) return;
  const int64_t row_elements = view.numel() / view.shape[0];
  const int64_t clamped = std::clamp<int64_t>(rows, 0, view.shape[0]);
  DropPages(view.data,
            clamped * row_elements * static_cast<int64_t>(sizeof(float)));
}

const TensorView* Weights::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> Weights::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, view] : tensors_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

int64_t Weights::TotalBytes() const {
  int64_t bytes = 0;
  for (const auto& [name, view] : tensors_) bytes += view.numel() * 4;
  return bytes;
}

}  // namespace ts::core
