#include "kiln/hub/repo.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::hub {

namespace fs = std::filesystem;

namespace {

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

Status check_name_part(std::string_view part, std::string_view what, std::string_view whole) {
  if (part.empty() || part.size() > 96 || part[0] == '.' || part[0] == '-' || part.find("..") != std::string_view::npos) {
    return invalid_argument(str_cat("'", whole, "' is not a model id: the ", what,
                                    " must be 1 to 96 letters, digits, '-', '_' or '.'"));
  }
  for (char c : part) {
    if (!name_char(c)) {
      return invalid_argument(str_cat("'", whole, "' is not a model id: the ", what,
                                      " may hold only letters, digits, '-', '_' and '.'"));
    }
  }
  return Status::ok();
}

bool safe_relative_path(std::string_view p) {
  if (p.empty() || p.size() > 1024 || p[0] == '/' || p.find('\\') != std::string_view::npos) return false;
  for (const auto& part : split(p, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

bool hex_of_length(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

Status check_repo_id(std::string_view repo) {
  const auto slash = repo.find('/');
  if (slash == std::string_view::npos || repo.find('/', slash + 1) != std::string_view::npos) {
    return invalid_argument(str_cat("'", repo, "' is not a model id: use ORG/NAME (e.g. Qwen/Qwen3-0.6B)"));
  }
  KILN_RETURN_IF_ERROR(check_name_part(repo.substr(0, slash), "organization", repo));
  return check_name_part(repo.substr(slash + 1), "name", repo);
}

Status check_revision(std::string_view revision) {
  if (revision.empty() || revision.size() > 255 || revision.find("..") != std::string_view::npos ||
      revision[0] == '/' || revision.back() == '/') {
    return invalid_argument(str_cat("'", revision, "' is not a revision (a branch, tag or commit)"));
  }
  for (char c : revision) {
    if (c <= 0x20 || c >= 0x7f || c == '\\') {
      return invalid_argument(str_cat("'", revision, "' is not a revision (a branch, tag or commit)"));
    }
  }
  return Status::ok();
}

Result<RepoRef> parse_repo_ref(std::string_view text) {
  RepoRef ref;
  const auto at = text.find('@');
  ref.repo = std::string(text.substr(0, at));
  ref.revision = at == std::string_view::npos ? "main" : std::string(text.substr(at + 1));
  KILN_RETURN_IF_ERROR(check_repo_id(ref.repo));
  KILN_RETURN_IF_ERROR(check_revision(ref.revision));
  return ref;
}

Result<RepoInfo> parse_repo_info(std::string_view text) {
  using nlohmann::json;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return data_loss("the Hub's model info is not a JSON object");
  RepoInfo info;
  auto sha = j.find("sha");
  if (sha == j.end() || !sha->is_string() || !hex_of_length(sha->get<std::string>(), 40)) {
    return data_loss("the Hub's model info has no commit (\"sha\" of 40 hex digits)");
  }
  info.commit = sha->get<std::string>();
  auto siblings = j.find("siblings");
  if (siblings == j.end() || !siblings->is_array()) return data_loss("the Hub's model info has no file list (\"siblings\")");
  for (const json& s : *siblings) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) {
      return data_loss("a file of the Hub's model info has no \"rfilename\"");
    }
    RepoFile f;
    f.path = s["rfilename"].get<std::string>();
    if (!safe_relative_path(f.path)) return data_loss(str_cat("the Hub lists a file with an unsafe path: '", f.path, "'"));
    if (auto it = s.find("size"); it != s.end() && it->is_number_integer() && it->get<int64_t>() >= 0) f.size = it->get<int64_t>();
    if (auto it = s.find("blobId"); it != s.end() && it->is_string() && hex_of_length(it->get<std::string>(), 40)) {
      f.blob_id = it->get<std::string>();
    }
    if (auto lfs = s.find("lfs"); lfs != s.end() && lfs->is_object()) {
      auto oid = lfs->find("sha256");
      if (oid == lfs->end() || !oid->is_string() || !hex_of_length(oid->get<std::string>(), 64)) {
        return data_loss(str_cat("the Hub's LFS entry of '", f.path, "' has no sha256"));
      }
      f.sha256 = oid->get<std::string>();
      if (auto sz = lfs->find("size"); sz != lfs->end() && sz->is_number_integer() && sz->get<int64_t>() >= 0) {
        f.size = sz->get<int64_t>();
      }
    }
    info.files.push_back(std::move(f));
  }
  return info;
}

bool kiln_serves(std::string_view path) {
  static constexpr std::string_view kRootFiles[] = {
      "config.json",           "generation_config.json",  "tokenizer.json",
      "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
      "chat_template.json",    "model.safetensors.index.json", "modules.json",
      "sentence_bert_config.json", "config_sentence_transformers.json"};
  const auto slash = path.find('/');
  if (slash == std::string_view::npos) {
    for (auto f : kRootFiles) {
      if (path == f) return true;
    }
    return ends_with(path, ".safetensors");
  }
  // A sentence-transformers Pooling module ("1_Pooling/config.json"): modules.json names it.
  const std::string_view dir = path.substr(0, slash);
  return path.substr(slash + 1) == "config.json" && ends_with(dir, "_Pooling");
}

Result<std::vector<RepoFile>> files_to_pull(const RepoInfo& info) {
  std::vector<RepoFile> out;
  bool config = false, weights = false;
  for (const auto& f : info.files) {
    if (!kiln_serves(f.path)) continue;
    if (f.sha256.empty() && f.blob_id.empty()) {
      return data_loss(str_cat("the Hub gives neither an LFS sha256 nor a blob id for '", f.path,
                               "' (ask the API with ?blobs=true)"));
    }
    if (f.size < 0) return data_loss(str_cat("the Hub gives no size for '", f.path, "'"));
    config |= f.path == "config.json";
    weights |= ends_with(f.path, ".safetensors");
    out.push_back(f);
  }
  if (!config) return failed_precondition("the repository has no config.json: it is not a model kiln can serve");
  if (!weights) {
    return failed_precondition(
        "the repository has no *.safetensors weights: kiln serves safetensors checkpoints only (not GGUF or .bin)");
  }
  return out;
}

Result<std::vector<RepoFile>> select_weights(std::vector<RepoFile> files, const std::optional<std::string>& index_json) {
  using nlohmann::json;
  std::set<std::string> wanted;
  if (index_json) {
    json index = json::parse(*index_json, nullptr, /*allow_exceptions=*/false);
    auto wm = index.is_object() ? index.find("weight_map") : index.end();
    if (index.is_discarded() || !index.is_object() || wm == index.end() || !wm->is_object()) {
      return data_loss(str_cat(kIndexFile, " of the repository has no 'weight_map' object"));
    }
    for (const auto& [name, shard] : wm->items()) {
      if (!shard.is_string()) return data_loss(str_cat(kIndexFile, ": weight_map['", name, "'] is not a file name"));
      wanted.insert(shard.get<std::string>());
    }
    if (wanted.empty()) return data_loss(str_cat(kIndexFile, ": 'weight_map' names no tensors"));
  } else {
    wanted.insert("model.safetensors");
  }
  std::erase_if(files, [&](const RepoFile& f) { return ends_with(f.path, ".safetensors") && !wanted.count(f.path); });
  for (const auto& w : wanted) {
    const bool listed = std::any_of(files.begin(), files.end(), [&](const RepoFile& f) { return f.path == w; });
    if (!listed) {
      return failed_precondition(str_cat("the repository has no '", w, "'",
                                         index_json ? str_cat(" (", kIndexFile, " names it)") : std::string(),
                                         ": kiln reads model.safetensors or the shards of ", kIndexFile));
    }
  }
  return files;
}

fs::path repo_cache_dir(const fs::path& hub, std::string_view repo) {
  std::string name = "models--";
  for (char c : repo) {
    if (c == '/') name += "--";
    else name += c;
  }
  return hub / name;
}

std::string blob_name(const RepoFile& f) { return f.sha256.empty() ? f.blob_id : f.sha256; }

fs::path blob_link_target(std::string_view path, std::string_view blob) {
  fs::path target = "..";
  target /= "..";
  for (char c : path) {
    if (c == '/') target /= "..";
  }
  return target / "blobs" / std::string(blob);
}

std::optional<std::string> token_from_environment() {
  if (const char* t = std::getenv("HF_TOKEN"); t != nullptr && *t != '\0') return std::string(trim(t));
  fs::path file;
  if (const char* p = std::getenv("HF_TOKEN_PATH"); p != nullptr && *p != '\0') {
    file = p;
  } else if (const char* h = std::getenv("HF_HOME"); h != nullptr && *h != '\0') {
    file = fs::path(h) / "token";
  } else if (const char* home = std::getenv("HOME"); home != nullptr) {
    file = fs::path(home) / ".cache" / "huggingface" / "token";
  }
  if (file.empty()) return std::nullopt;
  auto text = read_file(file);
  if (!text.is_ok() || trim(*text).empty()) return std::nullopt;
  return std::string(trim(*text));
}

std::string endpoint_from_environment() {
  std::string e = "https://huggingface.co";
  if (const char* v = std::getenv("HF_ENDPOINT"); v != nullptr && *v != '\0') e = v;
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

namespace {
std::string encode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}
}  // namespace

std::string url_segment(std::string_view s) { return encode(s, false); }
std::string url_path(std::string_view s) { return encode(s, true); }

}  // namespace kiln::hub
