// The JSON Schema compiler's internals, shared by json_schema*.cpp (not a public interface).
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"
#include "kiln/grammar/json_schema.h"
#include "kiln/grammar/json_value.h"

namespace kiln::grammar::jsonschema {

// JSON value kinds a schema may accept (integer is a subset of number).
enum TypeBit : uint8_t {
  kNull = 1, kBoolean = 2, kObject = 4, kArray = 8, kString = 16, kNumber = 32, kInteger = 64,
};
inline constexpr uint8_t kAllTypes = 127;

// Merging copies a terminal's regex into every lexeme that uses it, and the lexer's NFA holds one
// copy per use, so a terminal whose NFA would be large (a string with a maxLength in the hundreds,
// an array of maxItems unrolled) is kept as a terminal of its own instead, built once however often
// it is used; the language is the same. Past kMaxArrayLexemeStates an array of one-terminal items
// is kept as rules too. Both are estimated NFA states (Compiler::nfa_cost).
inline constexpr uint64_t kMaxInlineStates = 1'500;
inline constexpr uint64_t kMaxArrayLexemeStates = 20'000;

// A compiled schema: the symbol deriving its values, or none when no value satisfies it.
using Sym = std::optional<Symbol>;

// Pieces of a sequence; adjacent regular pieces are merged into one terminal, so lexemes are as
// large as possible (`,"name":` with a string value is a single terminal).
class Seq {
 public:
  explicit Seq(class Compiler& c) : c_(c) {}
  Seq& re(RegexId r);
  Seq& sym(Symbol s);
  Seq& shared(Symbol s);  // never merged into its neighbours
  std::vector<Symbol> done();

 private:
  void flush();
  Compiler& c_;
  std::vector<RegexId> pending_;
  std::vector<Symbol> out_;
};

class Compiler {
 public:
  Compiler(const JsonValue& root, const JsonSchemaOptions& options);

  Result<Grammar> run();
  Result<Grammar> run_any_object();

  // json_schema.cpp
  Result<Sym> compile(const JsonValue& schema, const std::string& ptr, size_t depth);
  Status error_at(std::string_view what, const std::string& ptr) const;
  Status check_keywords(const JsonValue& s, const std::string& ptr) const;
  // A non-negative integer keyword (minLength, maxItems...), `dflt` when absent; a max over
  // limits::kMaxRepeat is no bound.
  Result<uint64_t> count(const JsonValue& s, std::string_view k, uint64_t dflt, const std::string& ptr) const;
  Result<const JsonValue*> resolve_ref(const JsonValue& ref, const std::string& ptr, std::string* target_ptr) const;

  // json_schema_struct.cpp
  Result<Sym> object_symbol(const JsonValue& s, const std::string& ptr, size_t depth);
  Result<Sym> array_symbol(const JsonValue& s, const std::string& ptr, size_t depth);
  Symbol any_value();
  Symbol any_object();

  // json_schema_merge.cpp: allOf's branches (and a node's own keywords) merged into one schema.
  Result<const JsonValue*> merge_all(const std::vector<const JsonValue*>& parts, const std::string& ptr, size_t depth);
  // Whether no value satisfies two schemas at once (false when it cannot tell).
  bool disjoint(const JsonValue& a, const JsonValue& b, size_t depth);
  // The kinds of values a schema can accept (a superset).
  uint8_t possible_types(const JsonValue& s, size_t depth);

  // A `pattern` as a regex over decoded values, padded with any text where it is unanchored.
  Result<RegexId> pattern_regex(const JsonValue& pattern, const std::string& ptr);
  Symbol terminal(RegexId r, std::string name);
  RegexId ws() const { return ws_; }
  RegexId punct(std::string_view text);  // whitespace, then the text
  RegexId regex_of(Symbol s) const { return g_.terminals[s.index()].regex; }
  // An estimate (an upper bound, saturating) of the NFA states the lexer builds for `r`.
  uint64_t nfa_cost(RegexId r);
  const JsonValue* keep(JsonValue v);     // a synthetic schema with a stable address

  Grammar g_;
  RegexPool& p_;
  const JsonValue& root_;
  JsonSchemaOptions options_;

 private:
  Result<Sym> compile_plain(const JsonValue& s, const std::string& ptr, size_t depth);
  Result<Sym> compile_enum(const JsonValue& s, const JsonValue& values, const std::string& ptr, uint8_t types);
  Result<RegexId> string_regex(const JsonValue& s, const std::string& ptr);
  Result<RegexId> number_regex(const JsonValue& s, bool integer, const std::string& ptr);
  Result<Sym> alternatives(std::vector<Sym> options, const std::string& name);

  RegexId ws_ = 0;
  std::vector<uint64_t> cost_;  // nfa_cost by RegexId, 0: not yet known
  std::unordered_map<const JsonValue*, Sym> done_;
  std::unordered_map<const JsonValue*, uint32_t> forward_;  // rules for schemas being compiled
  std::unordered_set<const JsonValue*> active_;
  std::deque<JsonValue> synthetic_;
  std::optional<Symbol> any_value_, any_object_;
};

// Keyword classes.
bool is_annotation_keyword(std::string_view k);
bool is_assertion_keyword(std::string_view k);  // from any draft; supported or not
bool is_supported_keyword(std::string_view k);

}  // namespace kiln::grammar::jsonschema
