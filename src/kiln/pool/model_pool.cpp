#include "kiln/pool/model_pool.h"

#include "kiln/core/str.h"

namespace kiln::pool {

Status model_not_found(std::string_view model_id) {
  return not_found(str_cat("The model `", model_id, "` does not exist or you do not have access to it."));
}

std::shared_ptr<const grammar::TokenVocabulary> LoadedModel::token_vocabulary() const {
  std::call_once(vocabulary_once_, [this] {
    vocabulary_ = grammar::TokenVocabulary::build(*tokenizer, worker->eos_token_ids());
  });
  return vocabulary_;
}

}  // namespace kiln::pool
