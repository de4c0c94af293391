// `kiln serve`'s Files and Batch APIs and webhooks (docs/batches.md): settings and start-up.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/http/batch_service.h"
#include "kiln/metrics/metrics.h"

namespace kiln::app {

struct BatchSettings {
  std::string files_dir;            // --files-dir ("" : DATA_DIR/files)
  int concurrency = 8;              // --batch-concurrency
  std::string lease = "60s";        // --batch-lease
  std::string window = "24h";       // --batch-window
  std::string load_grace = "5s";    // --batch-load-grace
  std::string retention = "30d";    // --batch-retention (0 or -1: forever)
  std::vector<std::string> webhooks;  // --webhook URL (repeatable)
  std::string webhook_secret;       // --webhook-secret whsec_...
  std::string webhook_retry_base = "5s";  // --webhook-retry-base
};

// Null when the job store is off. `node` is the job store's node name.
Result<std::unique_ptr<http::BatchService>> start_batches(const BatchSettings& s, const std::string& database,
                                                          const std::string& node, http::App& app,
                                                          pool::ModelPool& pool, metrics::Registry& registry);

}  // namespace kiln::app
