// Scratch memory of one Translator, shared with its Generator.
#ifndef TRANSFORMER_SERVING_CORE_TRANSLATOR_STATE_H_
#define TRANSFORMER_SERVING_CORE_TRANSLATOR_STATE_H_

#include <vector>

#include "core/layers/transformer_layers.h"
#include "core/model/marian_decoder.h"
#include "core/ops/execution_context.h"

namespace ts::core {

// Reused across calls, so steady-state decoding allocates nothing new.
struct TranslatorState {
  ExecutionContext ctx;
  std::vector<float> encoder_hidden;  // [batch, src_len, d_model]
  LayerScratch layer;
  DecoderWorkspace decoder;
  std::vector<float> logits;
};

}  // namespace ts::core

#endif  // TRANSFORMER_SERVING_CORE_TRANSLATOR_STATE_H_
