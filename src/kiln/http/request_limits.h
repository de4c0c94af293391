// The limits a request body's JSON is held to, and how much of a client's value an error quotes.
// They live together so that one page (docs/request-limits.md) can list them; each is far above
// what a legitimate request needs and low enough that parsing stays linear and memory bounded.
#pragma once

#include <cstddef>

namespace kiln::http {

// Nested arrays and objects. Chat messages, tools and JSON Schemas nest a handful of levels.
inline constexpr int kMaxJsonDepth = 64;

// Keys of one object. The largest legitimate objects are JSON Schemas of tools (hundreds of
// properties) and logit_bias (at most 1,024 entries, checked once parsed).
inline constexpr size_t kMaxJsonObjectKeys = 10'000;

// Items of one array: a token-id prompt as long as a 1M-token context.
inline constexpr size_t kMaxJsonArrayItems = size_t{1} << 20;

// Values in the whole body (every scalar, array and object counts one). Bounds the parsed
// document's memory: about 16 bytes per number, 48 per string and 72 per object.
inline constexpr size_t kMaxJsonValues = size_t{1} << 21;

// An error message quotes at most this many bytes of one client value (then "…").
inline constexpr size_t kMaxEchoBytes = 256;

// No error message is longer than this, whatever lower layers put in it.
inline constexpr size_t kMaxErrorMessageBytes = 4096;

}  // namespace kiln::http
