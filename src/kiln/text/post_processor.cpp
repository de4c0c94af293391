#include "kiln/text/post_processor.h"

namespace kiln::text {

void PostProcessor::process(std::vector<int32_t>& ids, bool add_special_tokens) const {
  if (!add_special_tokens) return;
  for (const PostProcessorStep& s : steps_) {
    if (!s.before.empty()) ids.insert(ids.begin(), s.before.begin(), s.before.end());
    ids.insert(ids.end(), s.after.begin(), s.after.end());
  }
}

std::vector<int32_t> PostProcessor::prefix_ids() const {
  std::vector<int32_t> prefix;
  for (const PostProcessorStep& s : steps_) prefix.insert(prefix.begin(), s.before.begin(), s.before.end());
  return prefix;
}

std::vector<int32_t> PostProcessor::suffix_ids() const {
  std::vector<int32_t> suffix;
  for (const PostProcessorStep& s : steps_) suffix.insert(suffix.end(), s.after.begin(), s.after.end());
  return suffix;
}

}  // namespace kiln::text
