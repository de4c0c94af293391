#include "kiln/text/tokenizer.h"

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/text/normalizer.h"
#include "kiln/text/pre_tokenizer.h"
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

// Bytes of a segment that the first pre-tokenizer step searches at once when encoding up to a limit.
constexpr size_t kEncodeWindowBytes = 64 << 10;

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool add_special_tokens,
                                               std::optional<size_t> max_tokens) const {
  return encode_text(*impl_, text, add_special_tokens, max_tokens, kEncodeWindowBytes);
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

std::string Tokenizer::token_bytes(int32_t id) const {
  const std::string* t = token_string(id);
  if (t == nullptr) return {};
  std::string s = *t;
  for (const DecoderStep& step : impl_->decoder.steps()) {
    switch (step.kind) {
      case DecoderStep::Kind::kByteLevel: {
        std::string bytes;
        if (byte_level_decode(s, bytes)) s = std::move(bytes);
        break;
      }
      case DecoderStep::Kind::kMetaspace:
        s = replace_all(s, step.replacement, " ");
        break;
      case DecoderStep::Kind::kReplace: {
        // The chain on a one-token list is exactly the per-token step.
        std::vector<std::string> one{std::move(s)};
        Decoder::apply(step, one);
        s = std::move(one[0]);
        break;
      }
      case DecoderStep::Kind::kByteFallback:
        if (const int b = byte_fallback_value(s); b >= 0) s.assign(1, static_cast<char>(b));
        break;
      case DecoderStep::Kind::kStrip:
      case DecoderStep::Kind::kFuse:
        break;
    }
  }
  return s;
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
