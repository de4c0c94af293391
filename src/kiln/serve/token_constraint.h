// Structured generation as the scheduler sees it: a sequence may carry a constraint that says which
// tokens may come next (a packed bitmask, runtime/step.h's TokenMasks) and advances by each
// sampled token. In the server a grammar::Matcher is behind it (grammar_constraint.h); the
// scheduler and worker know only this interface, so they are tested with hand-made masks.
//
// Threads: the worker fills a step's masks on its mask threads while the engine thread runs the
// forward pass (each constraint is touched by one thread at a time), and advances them on the
// engine thread after sampling.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

namespace kiln::serve {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Writes the mask of the tokens allowed next into `words` (the model's (vocab + 31) / 32 words);
  // every word is written.
  virtual void fill_mask(std::span<uint32_t> words) = 0;
  // Advances by a sampled token (one the mask allowed). False: the token was not allowed, and the
  // constraint is unchanged.
  virtual bool accept(int32_t token) = 0;
  // The output is complete and nothing but its end may follow (or an end token was accepted):
  // the sequence finishes with "stop".
  virtual bool complete() const = 0;
};

// Makes the constraint of each sequence of a request (n choices: n independent ones, all at the
// start). Shared by requests; thread-safe.
class ConstraintFactory {
 public:
  virtual ~ConstraintFactory() = default;
  virtual std::unique_ptr<TokenConstraint> make() const = 0;
};

}  // namespace kiln::serve
