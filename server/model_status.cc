#include "server/model_status.h"

#include "google/protobuf/util/time_util.h"

namespace ts::server {

transformer::v1::ModelStatus ModelStatusProto(const ModelInfo& info) {
  transformer::v1::ModelStatus status;
  status.set_name(info.name);
  status.set_source_language(info.source_language);
  for (const std::string& target : info.target_languages) {
    status.add_target_languages(target);
  }
  switch (info.state) {
    case ModelState::kUnloaded:
      status.set_state(transformer::v1::MODEL_STATE_UNLOADED);
      break;
    case ModelState::kLoading:
      status.set_state(transformer::v1::MODEL_STATE_LOADING);
      break;
    case ModelState::kReady:
      status.set_state(transformer::v1::MODEL_STATE_READY);
      break;
    case ModelState::kUnloading:
      status.set_state(transformer::v1::MODEL_STATE_UNLOADING);
      break;
    case ModelState::kFailed:
      status.set_state(transformer::v1::MODEL_STATE_FAILED);
      break;
  }
  status.set_reason(info.reason);
  status.set_weight_bytes(info.weight_bytes);
  status.set_compute_type(info.compute_type);
  if (info.last_used != absl::InfinitePast()) {
    *status.mutable_last_used() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            absl::ToUnixNanos(info.last_used));
  }
  status.set_in_flight(info.in_flight);
  status.set_is_default(info.is_default);
  return status;
}

}  // namespace ts::server
