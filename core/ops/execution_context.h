// Per-worker oneDNN state: engine, stream and a cache of primitives.
#ifndef TRANSFORMER_SERVING_CORE_OPS_EXECUTION_CONTEXT_H_
#define TRANSFORMER_SERVING_CORE_OPS_EXECUTION_CONTEXT_H_

#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace ts::core {

// One per worker thread (not thread-safe). oneDNN primitives are created once
// per shape class and kept here, so a decoding loop creates none after its
// first step. The cache is bounded, least recently used first out: a server
// sees many (batch, length) shapes, and each primitive holds JIT code.
class ExecutionContext {
 public:
  ExecutionContext() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

  dnnl::engine& engine() { return engine_; }
  dnnl::stream& stream() { return stream_; }

  // The primitive cached under `key`, or nullptr; marks it recently used.
  const dnnl::primitive* Find(const std::string& key) {
    auto it = primitives_.find(key);
    if (it == primitives_.end()) return nullptr;
    recency_.splice(recency_.begin(), recency_, it->second.position);
    return &it->second.primitive;
  }

  const dnnl::primitive& Insert(const std::string& key,
                                dnnl::primitive primitive) {
    if (primitives_.size() >= kMaxPrimitives) {
      primitives_.erase(recency_.back());
      recency_.pop_back();
    }
    recency_.push_front(key);
    return primitives_
        .insert_or_assign(key, Entry{std::move(primitive), recency_.begin()})
        .first->second.primitive;
  }

  size_t num_primitives() const { return primitives_.size(); }

  // Matmul inputs converted to bf16, reused across calls.
  std::vector<uint16_t> bf16_scratch;
  // Quantized matmul inputs [M, K], their row scales [M] and the int32
  // products [M, N] of matmuls that add to their output (the others convert
  // them in place), reused across calls.
  std::vector<int8_t> int8_scratch;
  std::vector<float> int8_row_scales;
  std::vector<int32_t> int32_scratch;

 private:
  static constexpr size_t kMaxPrimitives = 1024;
  struct Entry {
    dnnl::primitive primitive;
    std::list<std::string>::iterator position;
  };
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::list<std::string> recency_;  // most recently used first
  std::unordered_map<std::string, Entry> primitives_;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_OPS_EXECUTION_CONTEXT_H_
