#include "kiln/pool/model_pool.h"

#include "kiln/core/str.h"

namespace kiln::pool {

Status model_not_found(std::string_view model_id) {
  return not_found(str_cat("The model `", model_id, "` does not exist or you do not have access to it."));
}

}  // namespace kiln::pool
