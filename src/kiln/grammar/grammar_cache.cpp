// GrammarCache: an LRU of compiled grammars by spec content, each compiled once however many
// requests ask for it at the same time (the first compiles; the others wait on its result).
#include <future>
#include <list>
#include <unordered_map>

#include "kiln/grammar/spec.h"

#include "kiln/core/str.h"

namespace kiln::grammar {
namespace {
// Keys hold whole schema texts: besides `capacity`, their total size is bounded.
constexpr size_t kMaxKeyBytes = 64u << 20;
}  // namespace

std::string GrammarSpec::cache_key() const {
  // Length-prefixed fields, so that no two different specs share a key.
  std::string key = str_cat(static_cast<int>(kind), ";", json.compact_whitespace ? 1 : 0, ";", json.max_whitespace,
                            ";", json.default_additional_properties ? 1 : 0, ";", text.size(), ":");
  key += text;
  for (const std::string& c : choices) {
    key += str_cat(";", c.size(), ":");
    key += c;
  }
  if (kind == Kind::kToolCalls) {
    key += str_cat(";", tool_calls.family.size(), ":", tool_calls.family, ";", tool_calls.dialect.size(), ":",
                   tool_calls.dialect, ";", tool_calls.parallel ? 1 : 0, ";", tool_calls.lazy ? 1 : 0, ";",
                   tool_calls.prefix.size(), ":", tool_calls.prefix);
    for (const auto* markers : {&tool_calls.special_markers, &tool_calls.end_markers}) {
      key += str_cat(";", markers->size());
      for (const std::string& m : *markers) key += str_cat(";", m.size(), ":", m);
    }
    for (const ToolCallTool& t : tool_calls.tools) {
      key += str_cat(";", t.name.size(), ":", t.name, ";", t.strict ? 1 : 0, ";", t.parameters_json.size(), ":");
      key += t.parameters_json;
    }
  }
  return key;
}

using CompileResult = Result<std::shared_ptr<const CompiledGrammar>>;

struct GrammarCache::Impl {
  size_t capacity;
  Builder builder;
  CompileOptions options;
  std::mutex mu;
  struct Entry {
    std::shared_future<CompileResult> result;
    std::list<std::string>::iterator lru;
  };
  std::list<std::string> lru;  // most recent first
  std::unordered_map<std::string, Entry> entries;
  size_t key_bytes = 0;
};

GrammarCache::GrammarCache(size_t capacity, Builder builder, CompileOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->capacity = capacity == 0 ? 1 : capacity;
  impl_->builder = std::move(builder);
  impl_->options = options;
}

GrammarCache::~GrammarCache() = default;

CompileResult GrammarCache::get(const GrammarSpec& spec) {
  std::string key = spec.cache_key();
  std::promise<CompileResult> promise;
  std::shared_future<CompileResult> pending;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->entries.find(key);
    if (it != impl_->entries.end()) {
      impl_->lru.splice(impl_->lru.begin(), impl_->lru, it->second.lru);
      pending = it->second.result;
    } else {
      impl_->lru.push_front(key);
      impl_->key_bytes += key.size();
      impl_->entries.emplace(key, Impl::Entry{promise.get_future().share(), impl_->lru.begin()});
      // Evicting an entry still compiling is fine: its waiters hold the future.
      while (impl_->entries.size() > impl_->capacity || (impl_->key_bytes > kMaxKeyBytes && impl_->lru.size() > 1)) {
        impl_->key_bytes -= impl_->lru.back().size();
        impl_->entries.erase(impl_->lru.back());
        impl_->lru.pop_back();
      }
    }
  }
  if (pending.valid()) return pending.get();
  CompileResult result = [&]() -> CompileResult {
    auto g = impl_->builder(spec);
    if (!g.is_ok()) return g.status();
    return CompiledGrammar::compile(std::move(g).value(), impl_->options);
  }();
  promise.set_value(result);
  return result;
}

size_t GrammarCache::size() const {
  std::lock_guard lock(impl_->mu);
  return impl_->entries.size();
}

}  // namespace kiln::grammar
