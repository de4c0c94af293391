#include "kiln/text/tokenizer.h"

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/text/tokenizer_impl.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::shared_ptr<const Tokenizer>> Tokenizer::from_json(std::string_view tokenizer_json,
                                                               std::string_view config_json) {
  KILN_ASSIGN_OR_RETURN(auto impl, parse_tokenizer(tokenizer_json, config_json));
  return std::shared_ptr<const Tokenizer>(new Tokenizer(std::move(impl)));
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::load(const std::filesystem::path& dir) {
  const auto tok_path = dir / "tokenizer.json";
  auto tok = read_file(tok_path);
  if (!tok.is_ok()) return tok.status().with_context(str_cat("tokenizer: ", tok_path.string()));
  std::string config;
  const auto cfg_path = dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(cfg_path, ec)) {
    auto cfg = read_file(cfg_path);
    if (!cfg.is_ok()) return cfg.status().with_context(str_cat("tokenizer: ", cfg_path.string()));
    config = std::move(cfg).value();
  }
  auto t = from_json(*tok, config);
  if (!t.is_ok()) return t.status().with_context(dir.string());
  return t;
}

namespace {

size_t first_invalid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

}  // namespace

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& m = *impl_;
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    return invalid_argument(str_cat("text is not valid UTF-8 (byte offset ", bad, ")"));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Piece> pieces;
  for (const AddedSplit& raw : m.added.split(text, false)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    if (raw.start == raw.end) continue;
    const std::string_view segment = text.substr(raw.start, raw.end - raw.start);
    std::string normalized_storage;
    std::string_view normalized = segment;
    if (!m.normalizer.empty()) {
      KILN_ASSIGN_OR_RETURN(normalized_storage, m.normalizer.apply(segment));
      normalized = normalized_storage;
    }
    for (const AddedSplit& ns : m.added.split(normalized, true)) {
      if (ns.id >= 0) {
        ids.push_back(ns.id);
        continue;
      }
      if (ns.start == ns.end) continue;
      const std::string_view part = normalized.substr(ns.start, ns.end - ns.start);
      const bool at_origin = raw.start == 0 && ns.start == 0;
      if (m.pre_tokenizer.empty()) {
        KILN_RETURN_IF_ERROR(m.model->tokenize(part, ids));
        continue;
      }
      pieces.clear();
      KILN_RETURN_IF_ERROR(m.pre_tokenizer.run(part, at_origin, pieces));
      for (const Piece& p : pieces) KILN_RETURN_IF_ERROR(m.model->tokenize(p.text, ids));
    }
  }
  m.post_processor.process(ids, add_special_tokens);
  return ids;
}

const std::string* Tokenizer::token_string(int32_t id) const {
  if (const AddedToken* t = impl_->added.find_id(id)) return &t->content;
  return impl_->model->id_to_token(id);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* t = token_string(id);
    if (t == nullptr) continue;
    if (skip_special_tokens && impl_->added.is_special_content(*t)) continue;
    tokens.push_back(*t);
  }
  return impl_->decoder.decode(std::move(tokens));
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const int32_t* id = impl_->added.find_content(token)) return *id;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  const std::string* t = token_string(id);
  if (t == nullptr) return std::nullopt;
  return *t;
}

bool Tokenizer::is_special(int32_t id) const {
  const std::string* t = token_string(id);
  return t != nullptr && impl_->added.is_special_content(*t);
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
const SpecialTokens& Tokenizer::special_tokens() const { return impl_->special; }
std::vector<int32_t> Tokenizer::prefix_special_ids() const { return impl_->post_processor.prefix_ids(); }
std::vector<int32_t> Tokenizer::suffix_special_ids() const { return impl_->post_processor.suffix_ids(); }
const Decoder& Tokenizer::decoder() const { return impl_->decoder; }

}  // namespace kiln::text
