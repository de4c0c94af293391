// Helpers for the output-parser tests: run a parser over a text tokenized by a real tokenizer, fed
// token by token, in one delta, and cut into every 2 and 3 pieces, and compare the events (text
// events of one kind merged) with what is expected in each case.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/text/detokenizer.h"
#include "kiln/text/output_parser.h"
#include "tokenizer_test_util.h"

namespace kiln::text::parse_test {

// Events as readable lines: "content:..", "reasoning:..", "begin#0:name", "args#0:{..}", "end#0",
// "abort#0:<raw>". Ids are checked separately (check_ids).
inline std::vector<std::string> render(const std::vector<OutputEvent>& events) {
  std::vector<std::string> out;
  using K = OutputEvent::Kind;
  K last = K::kToolCallEnd;
  int32_t last_index = -1;
  for (const OutputEvent& e : events) {
    const std::string idx = "#" + std::to_string(e.index);
    const bool merge = !out.empty() && e.kind == last &&
                       (e.kind == K::kContent || e.kind == K::kReasoning ||
                        (e.kind == K::kToolCallArguments && e.index == last_index));
    if (merge) {
      out.back() += e.text;
      continue;
    }
    switch (e.kind) {
      case K::kContent: out.push_back("content:" + e.text); break;
      case K::kReasoning: out.push_back("reasoning:" + e.text); break;
      case K::kToolCallBegin: out.push_back("begin" + idx + ":" + e.name); break;
      case K::kToolCallArguments: out.push_back("args" + idx + ":" + e.text); break;
      case K::kToolCallEnd: out.push_back(e.aborted ? "abort" + idx + ":" + e.text : "end" + idx); break;
    }
    last = e.kind;
    last_index = e.index;
  }
  return out;
}

struct ParseRun {
  std::vector<OutputEvent> events;
  int32_t num_tool_calls = 0;
  int32_t reasoning_tokens = 0;
};

inline ParseRun run_deltas(const OutputParserOptions& o, const std::vector<std::string>& deltas) {
  auto p = OutputParser::create(o);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  ParseRun r;
  if (!p.is_ok()) return r;
  for (const std::string& d : deltas) (*p)->push(0, d, &r.events);
  (*p)->finish(&r.events);
  r.num_tool_calls = (*p)->num_tool_calls();
  r.reasoning_tokens = (*p)->reasoning_tokens();
  return r;
}

// The token-by-token deltas of `text` under a real tokenizer (special tokens rendered).
inline std::vector<std::string> token_deltas(const std::string& tokenizer, const std::string& text) {
  auto tok = tok_test::shared_tokenizer(tokenizer);
  EXPECT_TRUE(tok.is_ok()) << tok.status().to_string();
  if (!tok.is_ok()) return {};
  auto ids = (*tok)->encode(text, /*add_special_tokens=*/false);
  EXPECT_TRUE(ids.is_ok());
  IncrementalDetokenizer detok(*tok, /*skip_special_tokens=*/false);
  std::vector<std::string> deltas;
  for (int32_t id : *ids) deltas.push_back(detok.push(id));
  deltas.push_back(detok.finish());
  std::string joined;
  for (const auto& d : deltas) joined += d;
  EXPECT_EQ(joined, text) << "the tokenizer does not round-trip the test text";
  return deltas;
}

inline std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0xF0) n = 4;
    else if (c >= 0xE0) n = 3;
    else if (c >= 0xC0) n = 2;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

inline std::string join(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string s;
  for (size_t i = from; i < to; ++i) s += parts[i];
  return s;
}

// Checks every call's arguments add up to a JSON object and the ids have the family's shape.
inline void check_calls(const std::vector<OutputEvent>& events, bool mistral_ids) {
  std::map<int32_t, std::string> args;
  for (const OutputEvent& e : events) {
    if (e.kind == OutputEvent::Kind::kToolCallBegin) {
      if (mistral_ids) {
        EXPECT_EQ(e.id.size(), 9u) << e.id;
      } else {
        EXPECT_EQ(e.id.rfind("call_", 0), 0u) << e.id;
        EXPECT_EQ(e.id.size(), 29u) << e.id;
      }
      EXPECT_FALSE(e.name.empty());
    }
    if (e.kind == OutputEvent::Kind::kToolCallArguments) args[e.index] += e.text;
    if (e.kind == OutputEvent::Kind::kToolCallEnd && !e.aborted) {
      auto j = nlohmann::json::parse(args[e.index], nullptr, false);
      EXPECT_TRUE(!j.is_discarded() && j.is_object()) << args[e.index];
    }
  }
}

// Feeds `text` to a parser with `o` in every way: token by token (tokenized by `tokenizer`), as one
// delta, cut at every token boundary into 2 and 3 pieces and at every character into 2 pieces; the
// events must be `expected` each time. Returns the token-by-token run.
inline ParseRun expect_events(const OutputParserOptions& o, const std::string& tokenizer, const std::string& text,
                         const std::vector<std::string>& expected) {
  const std::vector<std::string> tokens = token_deltas(tokenizer, text);
  ParseRun by_token = run_deltas(o, tokens);
  EXPECT_EQ(render(by_token.events), expected) << "token by token";
  check_calls(by_token.events, o.tool_parser == "mistral");
  EXPECT_EQ(render(run_deltas(o, {text}).events), expected) << "one delta";
  const size_t n = tokens.size();
  for (size_t i = 0; i <= n; ++i) {
    const auto r = render(run_deltas(o, {join(tokens, 0, i), join(tokens, i, n)}).events);
    if (r != expected) {
      ADD_FAILURE() << "2 pieces at token " << i;
      EXPECT_EQ(r, expected);
      return by_token;
    }
    for (size_t k = i; k <= n; ++k) {
      const auto r3 = render(run_deltas(o, {join(tokens, 0, i), join(tokens, i, k), join(tokens, k, n)}).events);
      if (r3 != expected) {
        ADD_FAILURE() << "3 pieces at tokens " << i << ", " << k;
        EXPECT_EQ(r3, expected);
        return by_token;
      }
    }
  }
  const std::vector<std::string> chars = utf8_chars(text);
  for (size_t i = 0; i <= chars.size(); ++i) {
    const auto r = render(run_deltas(o, {join(chars, 0, i), join(chars, i, chars.size())}).events);
    if (r != expected) {
      ADD_FAILURE() << "2 pieces at character " << i;
      EXPECT_EQ(r, expected);
      return by_token;
    }
  }
  // Character by character too.
  EXPECT_EQ(render(run_deltas(o, chars).events), expected) << "character by character";
  return by_token;
}

inline OutputParserOptions options(std::string tool_parser, std::string reasoning = "", bool tools = true) {
  OutputParserOptions o;
  o.tool_parser = std::move(tool_parser);
  o.reasoning_parser = std::move(reasoning);
  o.tools_offered = tools;
  o.seed = 42;
  return o;
}

}  // namespace kiln::text::parse_test
