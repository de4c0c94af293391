// `kiln serve`'s POST /v1/admin/models/pull (docs/pull.md): the pull service over the Hugging
// Face cache that the registry scans, and the rescan that makes a pulled model servable.
#pragma once

#include <memory>

#include "kiln/http/pull_service.h"
#include "kiln/pool/model_pool.h"

namespace kiln::app {

// Pulls into $HF_HUB_CACHE (or $HF_HOME/hub, ~/.cache/huggingface/hub) from $HF_ENDPOINT with
// $HF_TOKEN, as `kiln pull` does.
std::unique_ptr<http::PullService> make_pull_service(pool::ModelPool& pool);

}  // namespace kiln::app
