#include "kiln/pool/registry.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

#include "kiln/core/file.h"
#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/text/output_parser.h"

namespace kiln::pool {

namespace fs = std::filesystem;

std::string_view model_source_name(ModelSource s) {
  switch (s) {
    case ModelSource::kConfig: return "config";
    case ModelSource::kModelsDir: return "models_dir";
    case ModelSource::kHuggingFaceCache: return "hf_cache";
  }
  return "unknown";
}

Result<Millis> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return invalid_argument("empty duration");
  if (s[0] == '-') {
    // Any negative value means "forever" (Ollama's keep_alive = -1); it must still be a number.
    auto rest = parse_duration(s.substr(1));
    if (!rest.is_ok()) return invalid_argument(str_cat("'", text, "' is not a duration (e.g. 30s, 5m, 1h, -1)"));
    return Millis(-1);
  }
  double total_ms = 0;
  size_t i = 0;
  bool any = false;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (start == i) return invalid_argument(str_cat("'", text, "' is not a duration (e.g. 30s, 5m, 1h, -1)"));
    char* end = nullptr;
    std::string num(s.substr(start, i - start));
    double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size()) return invalid_argument(str_cat("'", text, "' is not a duration"));
    size_t ustart = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    double mult;
    if (unit.empty()) {
      if (any || i != s.size()) return invalid_argument(str_cat("'", text, "': a bare number must stand alone"));
      mult = 1000.0;  // seconds
    } else if (unit == "ms") {
      mult = 1.0;
    } else if (unit == "s") {
      mult = 1000.0;
    } else if (unit == "m") {
      mult = 60'000.0;
    } else if (unit == "h") {
      mult = 3'600'000.0;
    } else if (unit == "d") {
      mult = 86'400'000.0;
    } else {
      return invalid_argument(str_cat("'", text, "': unknown unit '", unit, "' (use ms, s, m, h or d)"));
    }
    total_ms += v * mult;
    any = true;
  }
  if (total_ms > 1e15) return invalid_argument(str_cat("'", text, "' is too long"));
  return Millis(static_cast<int64_t>(std::llround(total_ms)));
}

std::string format_duration(Millis d) {
  const int64_t ms = d.count();
  if (ms < 0) return "forever";
  if (ms % 3'600'000 == 0 && ms > 0) return str_cat(ms / 3'600'000, "h");
  if (ms % 60'000 == 0 && ms > 0) return str_cat(ms / 60'000, "m");
  if (ms % 1000 == 0) return str_cat(ms / 1000, "s");
  return str_cat(ms, "ms");
}

namespace {

int64_t mtime_seconds(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return 0;
  auto sys = fs::file_time_type::clock::to_sys(t);
  return std::chrono::duration_cast<std::chrono::seconds>(sys.time_since_epoch()).count();
}

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.empty() || name[0] == '.';
}

ModelEntry make_entry(std::string id, const fs::path& dir, ModelSource source) {
  ModelEntry e;
  e.id = std::move(id);
  e.dir = dir;
  e.source = source;
  e.created = mtime_seconds(dir);
  auto slash = e.id.find('/');
  if (slash != std::string::npos) e.owned_by = e.id.substr(0, slash);
  return e;
}

std::vector<fs::path> sorted_children(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (hidden(it->path())) continue;
    std::error_code e2;
    if (fs::is_directory(it->path(), e2)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status setting_error(std::string_view source, const SettingValue& v, std::string_view key, std::string_view what) {
  return invalid_argument(str_cat(source, ":", v.line, ": '", key, "' ", what));
}

}  // namespace

bool is_model_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "config.json", ec) &&
         (fs::is_regular_file(dir / "model.safetensors", ec) || fs::is_regular_file(dir / "model.safetensors.index.json", ec));
}

std::vector<ModelEntry> scan_models_dir(const fs::path& root) {
  std::vector<ModelEntry> out;
  for (const fs::path& child : sorted_children(root)) {
    const std::string name = child.filename().string();
    if (is_model_dir(child)) {
      out.push_back(make_entry(name, child, ModelSource::kModelsDir));
      continue;
    }
    for (const fs::path& grand : sorted_children(child)) {
      if (is_model_dir(grand)) {
        out.push_back(make_entry(str_cat(name, "/", grand.filename().string()), grand, ModelSource::kModelsDir));
      }
    }
  }
  return out;
}

std::vector<ModelEntry> scan_hf_cache(const fs::path& hub) {
  std::vector<ModelEntry> out;
  for (const fs::path& repo : sorted_children(hub)) {
    const std::string name = repo.filename().string();
    if (!starts_with(name, "models--")) continue;
    // models--ORG--NAME (a model without an org is models--NAME).
    std::string rest = name.substr(8);
    std::string id;
    auto sep = rest.find("--");
    id = sep == std::string::npos ? rest : str_cat(rest.substr(0, sep), "/", rest.substr(sep + 2));
    if (id.empty()) continue;
    const fs::path snapshots = repo / "snapshots";
    fs::path chosen;
    auto ref = read_file(repo / "refs" / "main");
    if (ref.is_ok()) {
      const std::string rev(trim(*ref));
      if (!rev.empty() && rev.find('/') == std::string::npos && is_model_dir(snapshots / rev)) chosen = snapshots / rev;
    }
    if (chosen.empty()) {
      int64_t newest = -1;
      for (const fs::path& snap : sorted_children(snapshots)) {
        if (!is_model_dir(snap)) continue;
        const int64_t t = mtime_seconds(snap);
        if (t > newest) {
          newest = t;
          chosen = snap;
        }
      }
    }
    if (!chosen.empty()) out.push_back(make_entry(id, chosen, ModelSource::kHuggingFaceCache));
  }
  return out;
}

fs::path default_hf_hub_dir() {
  if (const char* c = std::getenv("HF_HUB_CACHE"); c != nullptr && *c != '\0') return c;
  if (const char* h = std::getenv("HF_HOME"); h != nullptr && *h != '\0') return fs::path(h) / "hub";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/") / ".cache" / "huggingface" / "hub";
}

std::vector<ModelEntry> scan_registry(const RegistryScan& scan, std::vector<std::string>* notes) {
  std::vector<ModelEntry> out;
  std::set<std::string> ids;
  auto add = [&](ModelEntry e) {
    if (e.created == 0) e.created = mtime_seconds(e.dir);
    if (e.settings.kind) {
      e.kind = *e.settings.kind;
    } else if (auto task = model::load_model_task(e.dir); task.is_ok()) {
      e.kind = task->kind;
    }
    if (!ids.insert(e.id).second) {
      if (notes != nullptr) {
        notes->push_back(str_cat("model `", e.id, "` in ", e.dir.string(), " (", model_source_name(e.source),
                                 ") is shadowed by another model with the same id"));
      }
      return;
    }
    out.push_back(std::move(e));
  };
  for (const auto& e : scan.configured) add(e);
  for (const auto& d : scan.models_dirs) {
    for (auto& e : scan_models_dir(d)) add(std::move(e));
  }
  if (scan.hf_hub) {
    for (auto& e : scan_hf_cache(*scan.hf_hub)) add(std::move(e));
  }
  return out;
}

Status check_output_parser_setting(std::string_view kind, std::string_view value) {
  std::vector<std::string> names;
  if (kind == "tool_parser") names = text::tool_parser_names();
  else names = text::reasoning_parser_names();
  if (value == "none" || std::find(names.begin(), names.end(), value) != names.end()) return Status::ok();
  std::string list;
  for (const auto& n : names) list += n + ", ";
  return invalid_argument(str_cat("'", value, "' is not a ", kind, " (", list, "or none)"));
}

Result<std::vector<ModelEntry>> parse_model_tables(const std::map<std::string, SettingValue>& values,
                                                   std::string_view source, const fs::path& base_dir) {
  std::map<std::string, ModelEntry> by_alias;
  std::map<std::string, int> first_line;
  for (const auto& [key, v] : values) {
    if (!starts_with(key, "models.")) continue;
    const std::string rest = key.substr(7);
    const auto dot = rest.rfind('.');
    if (dot == std::string::npos || dot == 0) {
      return setting_error(source, v, key, "is not a model setting: use [models.\"ALIAS\"] with path = \"DIR\"");
    }
    const std::string alias = rest.substr(0, dot), name = rest.substr(dot + 1);
    ModelEntry& e = by_alias[alias];
    e.id = alias;
    e.source = ModelSource::kConfig;
    if (!first_line.count(alias)) first_line[alias] = v.line;
    first_line[alias] = std::min(first_line[alias], v.line);
    if (v.is_array || v.items.size() != 1) return setting_error(source, v, key, "takes one value, not an array");
    const std::string& s = v.items[0];
    auto integer = [&](int64_t lo, int64_t hi, int64_t* out) -> Status {
      char* end = nullptr;
      long long x = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || end != s.c_str() + s.size() || x < lo || x > hi)
        return setting_error(source, v, key, str_cat("must be an integer from ", lo, " to ", hi, ", not '", s, "'"));
      *out = x;
      return Status::ok();
    };
    auto real = [&](double lo, double hi, std::optional<double>* out) -> Status {
      char* end = nullptr;
      double x = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size() || !(x >= lo && x <= hi))
        return setting_error(source, v, key, str_cat("must be a number from ", lo, " to ", hi, ", not '", s, "'"));
      *out = x;
      return Status::ok();
    };
    ModelSettings& st = e.settings;
    if (name == "path") {
      if (s.empty()) return setting_error(source, v, key, "is empty");
      fs::path p = s;
      if (starts_with(s, "~/")) {
        const char* home = std::getenv("HOME");
        p = fs::path(home != nullptr ? home : "/") / s.substr(2);
      }
      e.dir = p.is_absolute() ? p : base_dir / p;
    } else if (name == "context_length" || name == "max_model_len") {
      int64_t x = 0;
      KILN_RETURN_IF_ERROR(integer(1, int64_t{1} << 30, &x));
      st.context_length = x;
    } else if (name == "dtype") {
      runtime::WeightDType t = runtime::WeightDType::kAuto;
      if (!runtime::parse_weight_dtype(s, &t))
        return setting_error(source, v, key, str_cat("is not auto, f32, bf16 or q8: '", s, "'"));
      st.dtype = t;
    } else if (name == "max_seqs") {
      int64_t x = 0;
      KILN_RETURN_IF_ERROR(integer(1, 1 << 20, &x));
      st.max_seqs = static_cast<int32_t>(x);
    } else if (name == "kv_cache_memory" && s == "rest") {
      st.kv_rest = true;
    } else if (name == "kv_cache_memory") {
      long long b = 0;
      if (!parse_bytes(s, &b) || b <= 0)
        return setting_error(source, v, key, str_cat("is not a size (e.g. 2GiB) or \"rest\": '", s, "'"));
      st.kv_cache_bytes = b;
    } else if (name == "kv_share") {
      KILN_RETURN_IF_ERROR(real(1e-6, 1.0, &st.kv_share));
    } else if (name == "pinned") {
      if (s != "true" && s != "false") return setting_error(source, v, key, "takes true or false");
      st.pinned = s == "true";
    } else if (name == "keep_alive") {
      auto d = parse_duration(s);
      if (!d.is_ok()) return setting_error(source, v, key, d.status().message());
      st.keep_alive = *d;
    } else if (name == "temperature") {
      KILN_RETURN_IF_ERROR(real(0.0, 2.0, &st.temperature));
    } else if (name == "top_p") {
      KILN_RETURN_IF_ERROR(real(0.0, 1.0, &st.top_p));
    } else if (name == "min_p") {
      KILN_RETURN_IF_ERROR(real(0.0, 1.0, &st.min_p));
    } else if (name == "repetition_penalty") {
      KILN_RETURN_IF_ERROR(real(0.01, 100.0, &st.repetition_penalty));
    } else if (name == "top_k") {
      int64_t x = 0;
      KILN_RETURN_IF_ERROR(integer(0, 1 << 30, &x));
      st.top_k = x;
    } else if (name == "tool_parser" || name == "reasoning_parser") {
      Status ok = check_output_parser_setting(name, s);
      if (!ok.is_ok()) return setting_error(source, v, key, ok.message());
      (name == "tool_parser" ? st.tool_parser : st.reasoning_parser) = s;
    } else if (name == "store_bodies") {
      if (s != "true" && s != "false") return setting_error(source, v, key, "takes true or false");
      st.store_bodies = s == "true";
    } else if (name == "kind") {
      model::ModelKind k;
      if (!model::parse_model_kind(s, &k)) return setting_error(source, v, key, "must be generate, embed or rerank");
      st.kind = k;
    } else if (name == "description") {
      e.description = s;
    } else if (name == "owned_by") {
      e.owned_by = s;
    } else {
      return setting_error(source, v, key,
                           "is not a model setting (path, context_length, max_seqs, dtype, kv_cache_memory, kv_share, "
                           "pinned, keep_alive, temperature, top_p, top_k, min_p, repetition_penalty, tool_parser, "
                           "reasoning_parser, store_bodies, kind, description, owned_by)");
    }
  }
  std::vector<ModelEntry> out;
  for (auto& [alias, e] : by_alias) {
    if (alias.empty() || !is_valid_utf8(alias) || alias.find_first_of("\r\n\t ") != std::string::npos) {
      return invalid_argument(str_cat(source, ":", first_line[alias], ": model alias '", alias,
                                      "' must be non-empty and have no spaces"));
    }
    if (e.dir.empty()) {
      return invalid_argument(str_cat(source, ":", first_line[alias], ": model `", alias,
                                      "` has no path (add path = \"DIR\" to [models.\"", alias, "\"])"));
    }
    if ((e.settings.kv_cache_bytes || e.settings.kv_rest) && e.settings.kv_share) {
      return invalid_argument(str_cat(source, ":", first_line[alias], ": model `", alias,
                                      "` sets both kv_cache_memory and kv_share; keep one"));
    }
    e.created = mtime_seconds(e.dir);
    out.push_back(std::move(e));
  }
  // Keep the file's order (by first line), which is the order /v1/models shows.
  std::sort(out.begin(), out.end(), [&](const ModelEntry& a, const ModelEntry& b) {
    return first_line[a.id] < first_line[b.id];
  });
  return out;
}

}  // namespace kiln::pool
