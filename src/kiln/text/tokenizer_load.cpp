// Reads tokenizer.json and tokenizer_config.json into the tokenizer's parts. Everything a file can
// get wrong becomes a Status that names the field; nothing here aborts.
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/text/tokenizer_impl.h"
#include "kiln/text/utf8.h"

namespace kiln::text {
namespace {

using json = nlohmann::json;

Status bad(std::string_view path, std::string_view what) { return invalid_argument(str_cat(path, ": ", what)); }

std::string type_of(const json& j) {
  if (!j.is_object()) return "";
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool get_bool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

Result<std::string> get_string(const json& j, const char* key, std::string_view path) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return bad(path, str_cat("'", key, "' must be a string"));
  return it->get<std::string>();
}

// {"String": s} or {"Regex": r}
Status parse_pattern(const json& j, std::string_view path, std::string* literal, std::optional<Regex>* regex) {
  if (!j.is_object()) return bad(path, "pattern must be an object with \"String\" or \"Regex\"");
  if (auto it = j.find("String"); it != j.end() && it->is_string()) {
    *literal = it->get<std::string>();
    return Status::ok();
  }
  if (auto it = j.find("Regex"); it != j.end() && it->is_string()) {
    auto r = Regex::compile(it->get<std::string>());
    if (!r.is_ok()) return r.status().with_context(path);
    *regex = std::move(r).value();
    return Status::ok();
  }
  return bad(path, "pattern must have a \"String\" or \"Regex\" member");
}

Status parse_normalizer(const json& j, std::string_view path, Normalizer& out) {
  if (j.is_null()) return Status::ok();
  const std::string type = type_of(j);
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) return bad(path, "Sequence needs a 'normalizers' array");
    for (size_t i = 0; i < it->size(); ++i)
      KILN_RETURN_IF_ERROR(parse_normalizer((*it)[i], str_cat(path, ".normalizers[", i, "]"), out));
    return Status::ok();
  }
  NormalizerStep s;
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    s.kind = NormalizerStep::Kind::kUnicode;
    s.form = type == "NFC" ? NormalizationForm::kNfc : type == "NFD" ? NormalizationForm::kNfd
           : type == "NFKC" ? NormalizationForm::kNfkc : NormalizationForm::kNfkd;
  } else if (type == "Replace") {
    s.kind = NormalizerStep::Kind::kReplace;
    auto p = j.find("pattern");
    if (p == j.end()) return bad(path, "Replace needs a 'pattern'");
    KILN_RETURN_IF_ERROR(parse_pattern(*p, str_cat(path, ".pattern"), &s.literal, &s.regex));
    KILN_ASSIGN_OR_RETURN(s.content, get_string(j, "content", path));
  } else if (type == "Prepend") {
    s.kind = NormalizerStep::Kind::kPrepend;
    KILN_ASSIGN_OR_RETURN(s.content, get_string(j, "prepend", path));
  } else if (type == "Strip") {
    s.kind = NormalizerStep::Kind::kStrip;
    s.strip_left = get_bool(j, "strip_left", true);
    s.strip_right = get_bool(j, "strip_right", true);
  } else {
    return unimplemented(str_cat(path, ": normalizer type '", type, "' is not supported"));
  }
  out.add(std::move(s));
  return Status::ok();
}

Result<SplitBehavior> parse_behavior(const json& j, std::string_view path) {
  auto it = j.find("behavior");
  if (it == j.end() || !it->is_string()) return bad(path, "'behavior' must be a string");
  const std::string b = it->get<std::string>();
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return bad(path, str_cat("unknown split behavior '", b, "'"));
}

Result<PrependScheme> parse_prepend_scheme(const json& j, std::string_view path) {
  if (auto it = j.find("prepend_scheme"); it != j.end() && it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    return bad(path, str_cat("unknown prepend_scheme '", s, "'"));
  }
  return get_bool(j, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

Result<std::string> parse_replacement(const json& j, std::string_view path) {
  std::string r = "\xE2\x96\x81";
  if (auto it = j.find("replacement"); it != j.end() && it->is_string()) r = it->get<std::string>();
  if (r.empty() || utf8_sequence_length(r, 0) != r.size()) return bad(path, "'replacement' must be one character");
  return r;
}

Status parse_pre_tokenizer(const json& j, std::string_view path, PreTokenizer& out) {
  if (j.is_null()) return Status::ok();
  const std::string type = type_of(j);
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) return bad(path, "Sequence needs a 'pretokenizers' array");
    for (size_t i = 0; i < it->size(); ++i)
      KILN_RETURN_IF_ERROR(parse_pre_tokenizer((*it)[i], str_cat(path, ".pretokenizers[", i, "]"), out));
    return Status::ok();
  }
  PreTokenizerStep s;
  if (type == "Split") {
    s.kind = PreTokenizerStep::Kind::kSplit;
    auto p = j.find("pattern");
    if (p == j.end()) return bad(path, "Split needs a 'pattern'");
    KILN_RETURN_IF_ERROR(parse_pattern(*p, str_cat(path, ".pattern"), &s.literal, &s.regex));
    KILN_ASSIGN_OR_RETURN(s.behavior, parse_behavior(j, path));
    s.invert = get_bool(j, "invert", false);
  } else if (type == "ByteLevel") {
    s.kind = PreTokenizerStep::Kind::kByteLevel;
    s.add_prefix_space = get_bool(j, "add_prefix_space", true);
    s.use_regex = get_bool(j, "use_regex", true);
  } else if (type == "Metaspace") {
    s.kind = PreTokenizerStep::Kind::kMetaspace;
    KILN_ASSIGN_OR_RETURN(s.replacement, parse_replacement(j, path));
    KILN_ASSIGN_OR_RETURN(s.prepend_scheme, parse_prepend_scheme(j, path));
    s.split = get_bool(j, "split", true);
  } else if (type == "Digits") {
    s.kind = PreTokenizerStep::Kind::kDigits;
    s.individual_digits = get_bool(j, "individual_digits", false);
  } else if (type == "Whitespace") {
    s.kind = PreTokenizerStep::Kind::kWhitespace;
    s.regex = Regex::compile("\\w+|[^\\w\\s]+").value();
  } else if (type == "WhitespaceSplit") {
    s.kind = PreTokenizerStep::Kind::kWhitespaceSplit;
  } else {
    return unimplemented(str_cat(path, ": pre-tokenizer type '", type, "' is not supported"));
  }
  out.add(std::move(s));
  return Status::ok();
}

Status parse_decoder(const json& j, std::string_view path, Decoder& out) {
  if (j.is_null()) return Status::ok();
  const std::string type = type_of(j);
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) return bad(path, "Sequence needs a 'decoders' array");
    for (size_t i = 0; i < it->size(); ++i)
      KILN_RETURN_IF_ERROR(parse_decoder((*it)[i], str_cat(path, ".decoders[", i, "]"), out));
    return Status::ok();
  }
  DecoderStep s;
  if (type == "ByteLevel") {
    s.kind = DecoderStep::Kind::kByteLevel;
  } else if (type == "Fuse") {
    s.kind = DecoderStep::Kind::kFuse;
  } else if (type == "ByteFallback") {
    s.kind = DecoderStep::Kind::kByteFallback;
  } else if (type == "Replace") {
    s.kind = DecoderStep::Kind::kReplace;
    auto p = j.find("pattern");
    if (p == j.end()) return bad(path, "Replace needs a 'pattern'");
    KILN_RETURN_IF_ERROR(parse_pattern(*p, str_cat(path, ".pattern"), &s.pattern, &s.regex));
    KILN_ASSIGN_OR_RETURN(s.content, get_string(j, "content", path));
  } else if (type == "Strip") {
    s.kind = DecoderStep::Kind::kStrip;
    KILN_ASSIGN_OR_RETURN(s.content, get_string(j, "content", path));
    if (s.content.empty() || utf8_sequence_length(s.content, 0) != s.content.size())
      return bad(path, "Strip 'content' must be one character");
    size_t i = 0;
    s.strip_char = next_code_point(s.content, i);
    auto num = [&](const char* key) -> Result<size_t> {
      auto it = j.find(key);
      if (it == j.end() || !it->is_number_unsigned()) return bad(path, str_cat("'", key, "' must be a count"));
      return it->get<size_t>();
    };
    KILN_ASSIGN_OR_RETURN(s.start, num("start"));
    KILN_ASSIGN_OR_RETURN(s.stop, num("stop"));
  } else if (type == "Metaspace") {
    s.kind = DecoderStep::Kind::kMetaspace;
    KILN_ASSIGN_OR_RETURN(s.replacement, parse_replacement(j, path));
    KILN_ASSIGN_OR_RETURN(PrependScheme scheme, parse_prepend_scheme(j, path));
    s.prepend = scheme != PrependScheme::kNever;
  } else {
    return unimplemented(str_cat(path, ": decoder type '", type, "' is not supported"));
  }
  out.add(std::move(s));
  return Status::ok();
}

// A special token reference: "<s>" in single/special_tokens, or [token, id] in Roberta/Bert.
Status parse_post_processor(const json& j, std::string_view path, PostProcessor& out) {
  if (j.is_null()) return Status::ok();
  const std::string type = type_of(j);
  if (type == "Sequence") {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) return bad(path, "Sequence needs a 'processors' array");
    for (size_t i = 0; i < it->size(); ++i)
      KILN_RETURN_IF_ERROR(parse_post_processor((*it)[i], str_cat(path, ".processors[", i, "]"), out));
    return Status::ok();
  }
  PostProcessorStep s;
  if (type == "ByteLevel") {
    return Status::ok();
  } else if (type == "TemplateProcessing") {
    auto single = j.find("single");
    auto specials = j.find("special_tokens");
    if (single == j.end() || !single->is_array()) return bad(path, "TemplateProcessing needs a 'single' array");
    bool seen_sequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const json& piece = (*single)[i];
      const std::string ppath = str_cat(path, ".single[", i, "]");
      if (piece.contains("Sequence")) {
        if (seen_sequence) return bad(ppath, "the single template names the sequence twice");
        seen_sequence = true;
        continue;
      }
      auto sp = piece.find("SpecialToken");
      if (sp == piece.end() || !sp->is_object()) return bad(ppath, "expected Sequence or SpecialToken");
      KILN_ASSIGN_OR_RETURN(std::string name, get_string(*sp, "id", ppath));
      if (specials == j.end() || !specials->contains(name))
        return bad(ppath, str_cat("special token '", name, "' is not in special_tokens"));
      const json& def = (*specials)[name];
      auto ids = def.find("ids");
      if (ids == def.end() || !ids->is_array()) return bad(ppath, str_cat("special_tokens['", name, "'] needs 'ids'"));
      for (const json& id : *ids) {
        if (!id.is_number_integer()) return bad(ppath, str_cat("special_tokens['", name, "'].ids must be integers"));
        (seen_sequence ? s.after : s.before).push_back(id.get<int32_t>());
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    for (const char* key : {"cls", "sep"}) {
      auto it = j.find(key);
      if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer())
        return bad(path, str_cat("'", key, "' must be [token, id]"));
      (std::string_view(key) == "cls" ? s.before : s.after).push_back((*it)[1].get<int32_t>());
    }
  } else {
    return unimplemented(str_cat(path, ": post-processor type '", type, "' is not supported"));
  }
  out.add(std::move(s));
  return Status::ok();
}

// tokenizer.json with model.vocab and model.merges read straight into their final containers:
// for the large vocabularies (Gemma 3: 262k tokens, 515k merges) a JSON DOM of them costs seconds.
struct ParsedTokenizerJson {
  json root;
  Vocab vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  bool has_vocab = false;
};

class TokenizerSax {
 public:
  explicit TokenizerSax(ParsedTokenizerJson& out) : out_(out) {}
  const std::string& error() const { return error_; }

  bool null() { return value(json()); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) {
    if (mode_ == Mode::kVocab) return vocab_entry(v);
    return value(json(v));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (mode_ == Mode::kVocab) return vocab_entry(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
    return value(json(v));
  }
  bool number_float(json::number_float_t v, const std::string&) { return value(json(v)); }
  bool binary(json::binary_t&) { return fail("unexpected binary value"); }
  bool string(std::string& v) {
    if (mode_ == Mode::kMerges) {
      const size_t sp = v.find(' ');
      if (sp == std::string::npos || v.find(' ', sp + 1) != std::string::npos)
        return fail(str_cat("model.merges[", out_.merges.size(), "]: must be two tokens separated by one space"));
      out_.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)));
  }
  bool start_object(size_t) {
    if (mode_ != Mode::kDom) return fail(where("unexpected object"));
    if (at_model_member("vocab")) {
      mode_ = Mode::kVocab;
      out_.has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool key(std::string& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool start_array(size_t) {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::kDom) return fail(where("unexpected array"));
    if (at_model_member("merges")) {
      mode_ = Mode::kMerges;
      return true;
    }
    return open(json::array());
  }
  bool end_array() {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) return fail(str_cat("model.merges[", out_.merges.size(), "]: must be [a, b]"));
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool parse_error(size_t, const std::string&, const json::exception& e) { return fail(e.what()); }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  bool fail(std::string m) {
    if (error_.empty()) error_ = std::move(m);
    return false;
  }
  std::string where(std::string_view what) {
    if (mode_ == Mode::kVocab) return str_cat("model.vocab: ", what);
    return str_cat("model.merges[", out_.merges.size(), "]: ", what);
  }
  bool at_model_member(const char* name) const {
    return stack_.size() == 2 && opened_with_[1] == "model" && stack_.back()->is_object() && key_ == name;
  }
  bool vocab_entry(int64_t v) {
    if (v < 0 || v > INT32_MAX) return fail(str_cat("model.vocab: the id of '", key_, "' is out of range"));
    out_.vocab.emplace(std::move(key_), static_cast<int32_t>(v));
    return true;
  }
  json* place(json v) {
    if (mode_ != Mode::kDom) {
      fail(where("unexpected value"));
      return nullptr;
    }
    if (stack_.empty()) {
      out_.root = std::move(v);
      return &out_.root;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json v) { return place(std::move(v)) != nullptr; }
  bool open(json v) {
    const std::string opened = !stack_.empty() && stack_.back()->is_object() ? key_ : std::string();
    json* p = place(std::move(v));
    if (p == nullptr) return false;
    stack_.push_back(p);
    opened_with_.push_back(opened);
    return true;
  }
  bool close() {
    if (stack_.empty()) return fail("unbalanced JSON");
    stack_.pop_back();
    opened_with_.pop_back();
    return true;
  }

  ParsedTokenizerJson& out_;
  std::vector<json*> stack_;
  std::vector<std::string> opened_with_;  // the key each open container was stored under
  std::string key_;
  Mode mode_ = Mode::kDom;
  std::vector<std::string> pair_;
  std::string error_;
};

Result<std::unique_ptr<BpeModel>> parse_model(const json& j, ParsedTokenizerJson& parsed) {
  const std::string type = type_of(j);
  if (!j.is_object()) return bad("model", "must be an object");
  if (!type.empty() && type != "BPE") return unimplemented(str_cat("model: type '", type, "' is not supported (kiln reads BPE)"));
  if (auto d = j.find("dropout"); d != j.end() && d->is_number() && d->get<double>() > 0.0)
    return unimplemented("model.dropout: BPE dropout makes encoding random; kiln does not support it");
  if (!parsed.has_vocab) return bad("model", "'vocab' must be an object");
  BpeOptions o;
  if (auto u = j.find("unk_token"); u != j.end() && u->is_string()) o.unk_token = u->get<std::string>();
  if (auto p = j.find("continuing_subword_prefix"); p != j.end() && p->is_string()) o.continuing_subword_prefix = p->get<std::string>();
  if (auto p = j.find("end_of_word_suffix"); p != j.end() && p->is_string()) o.end_of_word_suffix = p->get<std::string>();
  o.fuse_unk = get_bool(j, "fuse_unk", false);
  o.byte_fallback = get_bool(j, "byte_fallback", false);
  o.ignore_merges = get_bool(j, "ignore_merges", false);
  return BpeModel::create(std::move(parsed.vocab), parsed.merges, std::move(o));
}

Result<AddedToken> parse_added_token(const json& j, std::string_view path) {
  AddedToken t;
  KILN_ASSIGN_OR_RETURN(t.content, get_string(j, "content", path));
  t.special = get_bool(j, "special", false);
  t.lstrip = get_bool(j, "lstrip", false);
  t.rstrip = get_bool(j, "rstrip", false);
  t.single_word = get_bool(j, "single_word", false);
  t.normalized = get_bool(j, "normalized", !t.special);
  return t;
}

bool same_token(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.special == b.special && a.lstrip == b.lstrip && a.rstrip == b.rstrip &&
         a.single_word == b.single_word && a.normalized == b.normalized;
}

// Assigns ids as Hugging Face's AddedVocabulary::add_tokens does: a token already in the
// vocabulary keeps that id; a new one gets the next id after the model's (or the added) ids.
void add_tokens(std::vector<AddedToken>& list, const std::vector<AddedToken>& incoming, const BpeModel& model) {
  std::unordered_map<std::string, size_t> index;  // content -> position in list
  int32_t max_added = -1;
  for (size_t i = 0; i < list.size(); ++i) {
    index[list[i].content] = i;
    max_added = std::max(max_added, list[i].id);
  }
  for (const AddedToken& t : incoming) {
    if (t.content.empty()) continue;
    auto it = index.find(t.content);
    if (it != index.end() && same_token(list[it->second], t)) continue;
    int32_t id = -1;
    if (it != index.end()) {
      id = list[it->second].id;
    } else if (auto mid = model.token_to_id(t.content)) {
      id = *mid;
    } else {
      const auto vsize = static_cast<int32_t>(model.size());
      id = max_added < 0 ? vsize : (max_added >= vsize || vsize == 0 ? max_added + 1 : vsize);
    }
    AddedToken copy = t;
    copy.id = id;
    max_added = std::max(max_added, id);
    if (it != index.end()) {
      list[it->second] = std::move(copy);  // same content re-added with other options: the newest win
    } else {
      index[t.content] = list.size();
      list.push_back(std::move(copy));
    }
  }
}

std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) {
    auto it = j.find("content");
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

Status parse_config(const json& cfg, Tokenizer::Impl& m, std::vector<AddedToken>& extra_added) {
  SpecialTokens& s = m.special;
  if (auto it = cfg.find("bos_token"); it != cfg.end()) s.bos_token = token_content(*it);
  if (auto it = cfg.find("eos_token"); it != cfg.end()) s.eos_token = token_content(*it);
  if (auto it = cfg.find("pad_token"); it != cfg.end()) s.pad_token = token_content(*it);
  if (auto it = cfg.find("unk_token"); it != cfg.end()) s.unk_token = token_content(*it);
  s.add_bos_token = get_bool(cfg, "add_bos_token", false);
  s.add_eos_token = get_bool(cfg, "add_eos_token", false);
  if (auto it = cfg.find("additional_special_tokens"); it != cfg.end() && it->is_array())
    for (const json& t : *it)
      if (auto c = token_content(t); !c.empty()) s.additional_tokens.push_back(c);
  if (auto it = cfg.find("extra_special_tokens"); it != cfg.end()) {
    if (it->is_object()) {
      for (const auto& [k, v] : it->items())
        if (auto c = token_content(v); !c.empty()) s.additional_tokens.push_back(c);
    } else if (it->is_array()) {
      for (const json& t : *it)
        if (auto c = token_content(t); !c.empty()) s.additional_tokens.push_back(c);
    }
  }
  // transformers adds the tokens of added_tokens_decoder that tokenizer.json lacks.
  if (auto it = cfg.find("added_tokens_decoder"); it != cfg.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (!v.is_object()) return bad(str_cat("tokenizer_config.added_tokens_decoder['", k, "']"), "must be an object");
      KILN_ASSIGN_OR_RETURN(AddedToken t, parse_added_token(v, str_cat("tokenizer_config.added_tokens_decoder['", k, "']")));
      extra_added.push_back(std::move(t));
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Tokenizer::Impl>> parse_tokenizer(std::string_view tokenizer_json, std::string_view config_json) {
  ParsedTokenizerJson parsed;
  json cfg;
  {
    TokenizerSax sax(parsed);
    bool ok = false;
    try {
      ok = json::sax_parse(tokenizer_json, &sax);
    } catch (const json::exception& e) {
      return invalid_argument(str_cat("tokenizer.json is not valid JSON: ", e.what()));
    }
    if (!ok) return invalid_argument(str_cat("tokenizer.json is not valid JSON: ", sax.error()));
  }
  try {
    if (!config_json.empty()) cfg = json::parse(config_json);
  } catch (const json::exception& e) {
    return invalid_argument(str_cat("tokenizer_config.json is not valid JSON: ", e.what()));
  }
  const json& j = parsed.root;
  if (!j.is_object()) return bad("tokenizer.json", "must be a JSON object");
  if (!cfg.is_null() && !cfg.is_object()) return bad("tokenizer_config.json", "must be a JSON object");
  auto m = std::make_unique<Tokenizer::Impl>();
  try {
    auto model = j.find("model");
    if (model == j.end()) return bad("tokenizer.json", "has no 'model'");
    KILN_ASSIGN_OR_RETURN(m->model, parse_model(*model, parsed));
    const json null_json;
    auto member = [&](const char* key) -> const json& {
      auto it = j.find(key);
      return it == j.end() ? null_json : *it;
    };
    KILN_RETURN_IF_ERROR(parse_normalizer(member("normalizer"), "normalizer", m->normalizer));
    KILN_RETURN_IF_ERROR(parse_pre_tokenizer(member("pre_tokenizer"), "pre_tokenizer", m->pre_tokenizer));
    KILN_RETURN_IF_ERROR(parse_post_processor(member("post_processor"), "post_processor", m->post_processor));
    KILN_RETURN_IF_ERROR(parse_decoder(member("decoder"), "decoder", m->decoder));

    std::vector<AddedToken> incoming;
    const json& added = member("added_tokens");
    if (!added.is_null() && !added.is_array()) return bad("added_tokens", "must be an array");
    for (size_t i = 0; i < added.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(AddedToken t, parse_added_token(added[i], str_cat("added_tokens[", i, "]")));
      if (auto id = added[i].find("id"); id != added[i].end() && id->is_number_integer()) t.id = id->get<int32_t>();
      incoming.push_back(std::move(t));
    }
    std::vector<AddedToken> extra;
    if (cfg.is_object()) KILN_RETURN_IF_ERROR(parse_config(cfg, *m, extra));
    std::vector<AddedToken> list;
    add_tokens(list, incoming, *m->model);
    for (size_t i = 0; i < incoming.size() && i < list.size(); ++i) {
      if (incoming[i].id >= 0 && list[i].content == incoming[i].content && list[i].id != incoming[i].id)
        log_warn("tokenizer: added token '", incoming[i].content, "' is listed with id ", incoming[i].id,
                 " but gets id ", list[i].id, " (as in Hugging Face tokenizers)");
    }
    std::unordered_set<std::string> present;
    for (const AddedToken& t : list) present.insert(t.content);
    std::vector<AddedToken> missing;
    for (const AddedToken& t : extra)
      if (present.count(t.content) == 0) missing.push_back(t);
    add_tokens(list, missing, *m->model);

    Status norm_status;
    m->added.build(std::move(list), [&](const std::string& content) {
      auto r = m->normalizer.apply(content);
      if (!r.is_ok()) {
        norm_status = r.status();
        return content;
      }
      return std::move(r).value();
    });
    KILN_RETURN_IF_ERROR(norm_status);
  } catch (const json::exception& e) {
    return invalid_argument(str_cat("tokenizer.json: unexpected structure: ", e.what()));
  }

  int64_t max_id = static_cast<int64_t>(m->model->size()) - 1;
  for (const auto& [tok, id] : m->model->vocab()) max_id = std::max<int64_t>(max_id, id);
  for (const AddedToken& t : m->added.tokens()) max_id = std::max<int64_t>(max_id, t.id);
  m->vocab_size = static_cast<size_t>(max_id + 1);

  SpecialTokens& s = m->special;
  auto lookup = [&](const std::string& content) -> std::optional<int32_t> {
    if (content.empty()) return std::nullopt;
    if (const int32_t* id = m->added.find_content(content)) return *id;
    return m->model->token_to_id(content);
  };
  s.bos_id = lookup(s.bos_token);
  s.eos_id = lookup(s.eos_token);
  s.pad_id = lookup(s.pad_token);
  s.unk_id = lookup(s.unk_token);
  for (const std::string& t : s.additional_tokens)
    if (auto id = lookup(t)) s.additional_ids.push_back(*id);
  return m;
}

}  // namespace kiln::text
