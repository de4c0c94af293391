#include "kiln/text/chat_template.h"

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::text {
namespace {

using Json = nlohmann::ordered_json;
using jinja::Value;

// transformers' SPECIAL_TOKENS_ATTRIBUTES, in its order.
constexpr const char* kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

// A special token is a string or an AddedToken object {"content": ...}.
std::optional<std::string> token_text(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return std::nullopt;
}

std::vector<std::pair<std::string, Value>> special_tokens_from(const Json& config) {
  std::vector<std::pair<std::string, Value>> out;
  if (!config.is_object()) return out;
  for (const char* key : kSpecialTokenKeys) {
    if (!config.contains(key)) continue;
    if (auto t = token_text(config[key])) out.emplace_back(key, Value(*t));
  }
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    std::vector<Value> list;
    for (const auto& e : config["additional_special_tokens"])
      if (auto t = token_text(e)) list.emplace_back(*t);
    out.emplace_back("additional_special_tokens", Value::list(std::move(list)));
  }
  return out;
}

Result<Json> parse_json(std::string_view text, const std::string& what) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(what + " is not valid JSON");
  return j;
}

}  // namespace

Result<ChatTemplate> ChatTemplate::from_source(std::string_view source,
                                               std::vector<std::pair<std::string, Value>> special_tokens) {
  ChatTemplate ct;
  KILN_ASSIGN_OR_RETURN(auto t, jinja::Template::parse(source));
  ct.templates_.emplace("default", std::move(t));
  ct.sources_.emplace("default", std::string(source));
  ct.special_tokens_ = std::move(special_tokens);
  return ct;
}

namespace {

// Fills templates from tokenizer_config.json's chat_template: a string, or [{name, template}].
Status add_templates(const Json& chat_template, std::map<std::string, jinja::Template>* templates,
                     std::map<std::string, std::string>* sources) {
  auto add = [&](const std::string& name, const std::string& source) -> Status {
    auto t = jinja::Template::parse(source);
    if (!t.is_ok()) return t.status().with_context(str_cat("chat template '", name, "'"));
    templates->insert_or_assign(name, std::move(t).value());
    sources->insert_or_assign(name, source);
    return Status::ok();
  };
  if (chat_template.is_string()) return add("default", chat_template.get<std::string>());
  if (chat_template.is_array()) {
    for (const auto& e : chat_template) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
          !e["template"].is_string())
        return invalid_argument("chat_template: each entry of the list needs string 'name' and 'template'");
      KILN_RETURN_IF_ERROR(add(e["name"].get<std::string>(), e["template"].get<std::string>()));
    }
    return Status::ok();
  }
  return invalid_argument("chat_template must be a string or a list of {name, template}");
}

}  // namespace

Result<ChatTemplate> ChatTemplate::from_tokenizer_config(std::string_view json_text) {
  KILN_ASSIGN_OR_RETURN(Json config, parse_json(json_text, "tokenizer_config.json"));
  if (!config.is_object()) return invalid_argument("tokenizer_config.json is not a JSON object");
  ChatTemplate ct;
  ct.special_tokens_ = special_tokens_from(config);
  if (!config.contains("chat_template") || config["chat_template"].is_null())
    return not_found("tokenizer_config.json has no chat_template");
  KILN_RETURN_IF_ERROR(add_templates(config["chat_template"], &ct.templates_, &ct.sources_));
  return ct;
}

Result<ChatTemplate> ChatTemplate::load(const std::filesystem::path& model_dir) {
  ChatTemplate ct;
  Json config = Json::object();
  auto config_path = model_dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(config_path));
    KILN_ASSIGN_OR_RETURN(config, parse_json(text, config_path.string()));
  }
  ct.special_tokens_ = special_tokens_from(config);
  auto map_path = model_dir / "special_tokens_map.json";
  if (ct.special_tokens_.empty() && std::filesystem::exists(map_path, ec)) {
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(map_path));
    KILN_ASSIGN_OR_RETURN(Json map, parse_json(text, map_path.string()));
    ct.special_tokens_ = special_tokens_from(map);
  }
  auto jinja_path = model_dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja_path, ec)) {
    KILN_ASSIGN_OR_RETURN(std::string source, read_file(jinja_path));
    auto t = jinja::Template::parse(source);
    if (!t.is_ok()) return t.status().with_context(jinja_path.string());
    ct.templates_.insert_or_assign("default", std::move(t).value());
    ct.sources_.insert_or_assign("default", std::move(source));
    return ct;
  }
  if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    Status s = add_templates(config["chat_template"], &ct.templates_, &ct.sources_);
    if (!s.is_ok()) return s.with_context(config_path.string());
    return ct;
  }
  auto json_path = model_dir / "chat_template.json";
  if (std::filesystem::exists(json_path, ec)) {
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(json_path));
    KILN_ASSIGN_OR_RETURN(Json j, parse_json(text, json_path.string()));
    if (!j.is_object() || !j.contains("chat_template"))
      return invalid_argument(json_path.string() + " has no chat_template");
    Status s = add_templates(j["chat_template"], &ct.templates_, &ct.sources_);
    if (!s.is_ok()) return s.with_context(json_path.string());
    return ct;
  }
  return not_found(str_cat("no chat template in ", model_dir.string(),
                           " (looked for chat_template.jinja, tokenizer_config.json, chat_template.json)"));
}

std::vector<std::string> ChatTemplate::template_names() const {
  std::vector<std::string> names;
  for (const auto& kv : templates_) names.push_back(kv.first);
  return names;
}

std::vector<std::string> ChatTemplate::warnings() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : templates_)
    for (const auto& w : t.warnings()) out.push_back(name + ": " + w);
  return out;
}

const std::string& ChatTemplate::source(const std::string& name) const {
  static const std::string kEmpty;
  auto it = sources_.find(name);
  return it == sources_.end() ? kEmpty : it->second;
}

Result<std::string> ChatTemplate::render(const ChatTemplateInput& input, bool* raised) const {
  if (raised) *raised = false;
  const jinja::Template* t = nullptr;
  bool has_tools = !input.tools.is_none() && !input.tools.is_undefined();
  if (has_tools && templates_.count("tool_use")) t = &templates_.at("tool_use");
  else if (templates_.count("default")) t = &templates_.at("default");
  if (!t) return failed_precondition("the model's chat templates have neither 'default' nor (with tools) 'tool_use'");
  // transformers: render(messages=, tools=, documents=, add_generation_prompt=, **special_tokens,
  // **kwargs); later names override earlier ones.
  jinja::DictData context;
  context.set(Value("messages"), input.messages);
  context.set(Value("tools"), has_tools ? input.tools : Value(nullptr));
  context.set(Value("documents"), Value(nullptr));
  context.set(Value("add_generation_prompt"), Value(input.add_generation_prompt));
  for (const auto& [k, v] : special_tokens_) context.set(Value(k), v);
  for (const auto& [k, v] : input.kwargs) context.set(Value(k), v);
  jinja::RenderOptions options;
  options.now = input.now;
  jinja::RenderFailure failure;
  auto out = t->render(context, options, &failure);
  if (!out.is_ok() && raised) *raised = failure.kind == jinja::RenderError::Kind::kRaised;
  return out;
}

}  // namespace kiln::text
