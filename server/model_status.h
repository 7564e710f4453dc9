// ModelRegistry's view of a model as the API reports it (ListModels,
// LoadModel, UnloadModel, GetModelInfo, GET /v1/models).
#ifndef TRANSFORMER_SERVING_SERVER_MODEL_STATUS_H_
#define TRANSFORMER_SERVING_SERVER_MODEL_STATUS_H_

#include "server/model_registry.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// `info` as the proto's ModelStatus (last_used unset if never used).
transformer::v1::ModelStatus ModelStatusProto(const ModelInfo& info);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_MODEL_STATUS_H_
