// Post-processors of tokenizer.json: TemplateProcessing, ByteLevel, RobertaProcessing,
// BertProcessing, Sequence. Only the ids matter to kiln (offsets and type ids are not kept).
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::text {

struct PostProcessorStep {
  // The single-sequence template as ids: `before` + sequence + `after`. ByteLevel has none.
  std::vector<int32_t> before;
  std::vector<int32_t> after;
};

class PostProcessor {
 public:
  void add(PostProcessorStep step) { steps_.push_back(std::move(step)); }
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const;
  // The ids a template adds before and after the sequence (for callers that build prompts).
  std::vector<int32_t> prefix_ids() const;
  std::vector<int32_t> suffix_ids() const;

 private:
  std::vector<PostProcessorStep> steps_;
};

}  // namespace kiln::text
