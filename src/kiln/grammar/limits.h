// Sizes a client can make large in a grammar, bounded (the compilers refuse anything over them
// with kInvalidArgument naming the limit).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::grammar::limits {

inline constexpr size_t kMaxSourceBytes = 1u << 20;     // schema / grammar / regex text
inline constexpr size_t kMaxRegexNodes = 200'000;
inline constexpr size_t kMaxTerminals = 20'000;
inline constexpr size_t kMaxRules = 50'000;
inline constexpr size_t kMaxSymbols = 500'000;          // over all alternatives
inline constexpr uint32_t kMaxRepeat = 10'000;          // {m,n} bounds and min/maxItems, min/maxLength
inline constexpr size_t kMaxNesting = 64;               // schema / grammar / regex nesting depth
inline constexpr size_t kMaxChoices = 10'000;           // `choice` alternatives
inline constexpr size_t kMaxLexerStates = 400'000;      // NFA states of all terminals together
// Lazily built DFA states per compiled grammar; past it the grammar's matchers fail closed
// (Matcher::status()) rather than grow without bound.
inline constexpr size_t kMaxDfaStates = 50'000;
// Parser work for one chart position (items added or looked at) and Earley items in a whole chart
// (a sequence's parse state). An ambiguous grammar can make both grow with the text; past either,
// the matcher refuses the byte and reports kResourceExhausted through Matcher::status().
inline constexpr size_t kMaxParseStepsPerPosition = 250'000;
inline constexpr size_t kMaxChartItems = 8'000'000;
// Bytes of token masks cached per compiled grammar and vocabulary, and over the whole process;
// past either, masks are computed without being cached (slower, never wrong).
inline constexpr size_t kMaxTokenCacheBytes = 64u << 20;
inline constexpr size_t kMaxTokenCacheBytesTotal = 1u << 30;

}  // namespace kiln::grammar::limits
