// What a request asks to constrain its output to, and the one entry point that compiles it
// (through a cache shared by the whole server: the same spec compiles once).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/json_schema.h"
#include "kiln/grammar/matcher.h"
#include "kiln/grammar/tool_call.h"

namespace kiln::grammar {

struct GrammarSpec {
  enum class Kind { kJsonSchema, kJsonObject, kRegex, kChoice, kGrammarText, kToolCalls };
  Kind kind = Kind::kJsonObject;
  std::string text;                  // schema JSON text, regex, or grammar text
  std::vector<std::string> choices;  // kChoice
  JsonSchemaOptions json;            // kJsonSchema / kJsonObject
  ToolCallSpec tool_calls;           // kToolCalls

  std::string cache_key() const;
};

// Front-end dispatch: the spec to a Grammar (errors name the unsupported keyword or construct).
Result<Grammar> build_grammar(const GrammarSpec& spec);

// Compiles specs through an LRU cache of at most `capacity` compiled grammars. Thread-safe;
// concurrent requests for the same spec compile it once.
class GrammarCache {
 public:
  using Builder = std::function<Result<Grammar>(const GrammarSpec&)>;
  explicit GrammarCache(size_t capacity = 256);
  // With another front-end dispatch than build_grammar (tests).
  GrammarCache(size_t capacity, Builder builder, CompileOptions options = {});
  ~GrammarCache();
  Result<std::shared_ptr<const CompiledGrammar>> get(const GrammarSpec& spec);
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::grammar
