// The Hugging Face Hub's side of a pull, as plain C++: a repository reference, the file list the
// Hub's API gives for one revision, which of those files kiln serves, and the cache layout that
// huggingface_hub and other tools share (docs/pull.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::hub {

// "ORG/NAME" or "ORG/NAME@REVISION" (the revision defaults to "main").
struct RepoRef {
  std::string repo;      // ORG/NAME
  std::string revision;  // a branch, a tag or a commit
};
// Checks each part as the Hub names them: ORG and NAME of letters, digits, '-', '_' and '.'
// (not starting with '.' or '-'), at most 96 characters each; a revision of visible ASCII with
// no "..", at most 255 characters.
Result<RepoRef> parse_repo_ref(std::string_view text);
Status check_repo_id(std::string_view repo);
Status check_revision(std::string_view revision);

// One file of a revision, from GET /api/models/{repo}/revision/{rev}?blobs=true.
struct RepoFile {
  std::string path;       // "rfilename", relative to the repository root
  int64_t size = -1;      // bytes (-1: the API did not say)
  std::string blob_id;    // the git blob sha1
  std::string sha256;     // the LFS oid (empty: a file kept in git itself)
};

struct RepoInfo {
  std::string commit;  // "sha": the commit the revision names now
  std::vector<RepoFile> files;
};

// Reads the API's JSON; errors name what is missing. Paths that could leave the snapshot
// directory ("..", absolute, backslashes) are refused here, before anything is written.
Result<RepoInfo> parse_repo_info(std::string_view json);

// What kiln reads from a model directory (src/kiln/model and src/kiln/text): config and
// generation config, tokenizer files, chat templates, safetensors weights and their index, and
// the sentence-transformers files of an embedding model (modules.json, the Pooling module's
// config). Everything else (other weight formats, READMEs, images) stays on the Hub.
bool kiln_serves(std::string_view path);

// The files of `info` that kiln serves, or an error when they do not make a model kiln can load
// (no config.json, or no safetensors weights).
Result<std::vector<RepoFile>> files_to_pull(const RepoInfo& info);

// The weight files kiln opens (model/checkpoint.cpp): with model.safetensors.index.json (its
// text in `index_json`), the shards its weight_map names; without, model.safetensors. Other
// safetensors files (Mistral's consolidated.safetensors, adapters) are dropped from `files`.
// Fails when a weight file kiln would open is not in the repository.
Result<std::vector<RepoFile>> select_weights(std::vector<RepoFile> files, const std::optional<std::string>& index_json);
inline constexpr std::string_view kIndexFile = "model.safetensors.index.json";

// The Hugging Face cache layout under `hub` (e.g. ~/.cache/huggingface/hub).
std::filesystem::path repo_cache_dir(const std::filesystem::path& hub, std::string_view repo);  // models--ORG--NAME
// The blob's name: the LFS sha256, else the git blob id (what huggingface_hub names it: the ETag).
std::string blob_name(const RepoFile& f);
// "../../blobs/<name>", with one more ".." per directory level of `path`.
std::filesystem::path blob_link_target(std::string_view path, std::string_view blob);

// The token to send: $HF_TOKEN, else the file $HF_TOKEN_PATH, else $HF_HOME/token (where
// `huggingface-cli login` keeps it), else none.
std::optional<std::string> token_from_environment();
// $HF_ENDPOINT without a trailing '/', else https://huggingface.co.
std::string endpoint_from_environment();

// Percent-encodes one URL path segment (a revision may hold '/': "refs/pr/1").
std::string url_segment(std::string_view s);
// Percent-encodes a file path, keeping its '/' separators.
std::string url_path(std::string_view s);

}  // namespace kiln::hub
