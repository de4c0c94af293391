// Job-store reads (list, get, stats, export pages) run on one thread with its own connection, so
// an HTTP thread never waits for the database: a handler submits a query and posts the answer
// back to its exchange. At most `max_pending` queries wait; past that submit() refuses (503).
#pragma once

#include "kiln/core/work_queue.h"
#include "kiln/jobs/store.h"

namespace kiln::jobs {

using JobQueries = WorkQueue<JobStore>;

}  // namespace kiln::jobs
