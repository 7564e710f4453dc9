// Per-worker oneDNN state: engine, stream and a cache of primitives.
#ifndef TRANSFORMER_SERVING_CORE_OPS_EXECUTION_CONTEXT_H_
#define TRANSFORMER_SERVING_CORE_OPS_EXECUTION_CONTEXT_H_

#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace ts::core {

// One per worker thread (not thread-safe). oneDNN primitives are created once
// per shape class and kept here, so the decoding loop creates none after its
// first step. The cache is bounded: past kMaxPrimitives it starts over,
// which only costs re-creation.
class ExecutionContext {
 public:
  ExecutionContext() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

  dnnl::engine& engine() { return engine_; }
  dnnl::stream& stream() { return stream_; }

  // The primitive cached under `key`, or nullptr.
  const dnnl::primitive* Find(const std::string& key) const {
    auto it = primitives_.find(key);
    return it == primitives_.end() ? nullptr : &it->second;
  }

  const dnnl::primitive& Insert(const std::string& key,
                                dnnl::primitive primitive) {
    if (primitives_.size() >= kMaxPrimitives) primitives_.clear();
    return primitives_.emplace(key, std::move(primitive)).first->second;
  }

  size_t num_primitives() const { return primitives_.size(); }

  // Matmul inputs converted to bf16, reused across calls.
  std::vector<uint16_t> bf16_scratch;
  // Quantized matmul inputs [M, K], their row scales [M] and the int32
  // products [M, N], reused across calls.
  std::vector<int8_t> int8_scratch;
  std::vector<float> int8_row_scales;
  std::vector<int32_t> int32_scratch;

 private:
  static constexpr size_t kMaxPrimitives = 4096;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::unordered_map<std::string, dnnl::primitive> primitives_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_OPS_EXECUTION_CONTEXT_H_
