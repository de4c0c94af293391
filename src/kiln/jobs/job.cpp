#include "kiln/jobs/job.h"

namespace kiln::jobs {

namespace {
constexpr std::string_view kNames[] = {"queued", "running", "completed", "failed", "cancelled"};
}

std::string_view job_status_name(JobStatus s) { return kNames[static_cast<int>(s)]; }

std::optional<JobStatus> parse_job_status(std::string_view s) {
  for (int i = 0; i < 5; ++i) {
    if (kNames[i] == s) return static_cast<JobStatus>(i);
  }
  return std::nullopt;
}

bool is_terminal(JobStatus s) { return s != JobStatus::kQueued && s != JobStatus::kRunning; }

}  // namespace kiln::jobs
