// ModelPool's defaults: a pool whose models are all loaded at start and stay.
#include "kiln/pool/model_pool.h"

#include "kiln/core/str.h"

namespace kiln::pool {

Status model_not_found(std::string_view model_id) {
  return not_found(str_cat("The model `", model_id, "` does not exist or you do not have access to it."));
}

PoolStatus ModelPool::status() const {
  PoolStatus p;
  for (const ModelInfo& i : list()) {
    ModelStatus m;
    m.id = i.id;
    m.state = i.loaded ? ModelState::kReady : ModelState::kUnloaded;
    m.pinned = true;
    p.models.push_back(std::move(m));
    if (i.loaded) p.loaded += 1;
  }
  return p;
}

std::optional<ModelStatus> ModelPool::model_status(std::string_view model_id) const {
  for (ModelStatus& m : status().models) {
    if (m.id == model_id) return std::move(m);
  }
  return std::nullopt;
}

void ModelPool::load(std::string_view model_id, std::optional<bool> pinned,
                     std::function<void(Result<ModelStatus>)> done) {
  (void)pinned;
  auto st = model_status(model_id);
  if (!st) return done(model_not_found(model_id));
  done(std::move(*st));
}

void ModelPool::unload(std::string_view model_id, std::function<void(Result<ModelStatus>)> done) {
  if (!model_status(model_id)) return done(model_not_found(model_id));
  done(failed_precondition(str_cat("The model `", model_id, "` is served for the server's whole life and cannot be unloaded.")));
}

void ModelPool::rescan(std::function<void(Result<int64_t>)> done) {
  done(failed_precondition("This server serves a fixed set of models; there is nothing to rescan."));
}

}  // namespace kiln::pool
