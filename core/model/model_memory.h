// Memory a loaded MarianMT model needs, from its config alone: what
// `transformer-server --check` prints, the server logs at start and
// deploy/README.md's sizing formula uses.
#ifndef TRANSFORMER_SERVING_CORE_MODEL_MODEL_MEMORY_H_
#define TRANSFORMER_SERVING_CORE_MODEL_MODEL_MEMORY_H_

#include <cstdint>
#include <string>

#include "core/model/config.h"
#include "core/ops/matmul.h"

namespace ts::core {

// Bytes resident once the model is loaded in `compute_type`
// (MarianNetwork::Build): every matmul weight packed in that type (int8: one
// byte per value plus one fp32 scale per output row; bf16 keeps the output
// projection in fp32), and the tensors that stay fp32 (biases, layer norms,
// the two position tables [max_position_embeddings, d_model],
// final_logits_bias). Ignores oneDNN's padding and int8 compensation in
// packed layouts (the loaded demo model holds 3.6% more in int8, < 0.5% in
// fp32; MarianModel::resident_weight_bytes measures). Parameters counted
// once: the tied embeddings are one matrix.
int64_t WeightBytes(const ModelConfig& config, ops::ComputeType compute_type);

// Decoder self-attention keys and values per decoded token of one row
// (sentence x beam): 2 (K and V) x decoder_layers x d_model x 4 bytes (the
// cache is fp32 whatever the compute type). A row of L target tokens holds
// L times this.
int64_t KvCacheBytesPerToken(const ModelConfig& config);

// Cross-attention keys and values per source token of one row, computed once
// per source: 2 x decoder_layers x d_model x 4 bytes.
int64_t CrossKvBytesPerSourceToken(const ModelConfig& config);

// "12.3 MiB (12,894,208 bytes)".
std::string FormatBytes(int64_t bytes);

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_MODEL_MODEL_MEMORY_H_
