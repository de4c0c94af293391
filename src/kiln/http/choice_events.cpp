#include "kiln/http/choice_events.h"

#include <algorithm>

namespace kiln::http {

void ChoiceEvents::add(std::vector<text::OutputEvent>& events, bool streaming, size_t max_calls) {
  using K = text::OutputEvent::Kind;
  std::vector<text::OutputEvent> kept;
  kept.reserve(events.size());
  for (auto& e : events) {
    const bool call = e.kind != K::kContent && e.kind != K::kReasoning;
    if (call) {
      if (e.index < 0 || e.index > 4096) continue;  // a parser's call index is small and dense
      if (dropped_.size() <= static_cast<size_t>(e.index)) dropped_.resize(static_cast<size_t>(e.index) + 1, false);
      if (e.kind == K::kToolCallBegin && accepted_++ >= max_calls) dropped_[static_cast<size_t>(e.index)] = true;
      if (dropped_[static_cast<size_t>(e.index)]) continue;
    }
    if (streaming) {
      switch (e.kind) {
        case K::kContent: pending_.push_back({Piece::Kind::kContent, e.text, 0, "", ""}); break;
        case K::kReasoning: pending_.push_back({Piece::Kind::kReasoning, e.text, 0, "", ""}); break;
        case K::kToolCallBegin: pending_.push_back({Piece::Kind::kCallOpen, "", e.index, e.id, e.name}); break;
        case K::kToolCallArguments: pending_.push_back({Piece::Kind::kCallArguments, e.text, e.index, "", ""}); break;
        case K::kToolCallEnd: {
          if (!e.aborted) break;
          // A call that broke off: if nothing of it was sent yet, its raw text goes out as content
          // instead; once sent, the stream can only end it.
          auto open = std::find_if(pending_.begin(), pending_.end(), [&](const Piece& p) {
            return p.kind == Piece::Kind::kCallOpen && p.index == e.index;
          });
          if (open != pending_.end()) {
            pending_.erase(std::remove_if(open, pending_.end(), [&](const Piece& p) {
              return (p.kind == Piece::Kind::kCallOpen || p.kind == Piece::Kind::kCallArguments) && p.index == e.index;
            }), pending_.end());
            pending_.push_back({Piece::Kind::kContent, e.text, 0, "", ""});
          }
          break;
        }
      }
    }
    if (e.kind == K::kToolCallEnd && !e.aborted) ++ended_;
    kept.push_back(std::move(e));
  }
  parsed_.add(kept);
}

std::vector<ChoiceDelta> ChoiceEvents::take_deltas(int index) {
  std::vector<ChoiceDelta> out;
  const Piece* prev = nullptr;
  for (const Piece& p : pending_) {
    // As OpenAI streams: a call opens with arguments "", then its argument fragments follow.
    const bool same = prev != nullptr && prev->kind == p.kind && p.kind != Piece::Kind::kCallOpen &&
                      (p.kind != Piece::Kind::kCallArguments || prev->index == p.index);
    if (same) {
      ChoiceDelta& d = out.back();
      if (p.kind == Piece::Kind::kContent) *d.text += p.text;
      else if (p.kind == Piece::Kind::kReasoning) *d.reasoning += p.text;
      else d.tool_calls.back().arguments += p.text;
      continue;
    }
    ChoiceDelta d;
    d.index = index;
    switch (p.kind) {
      case Piece::Kind::kContent: d.text = p.text; break;
      case Piece::Kind::kReasoning: d.reasoning = p.text; break;
      case Piece::Kind::kCallOpen: d.tool_calls.push_back({p.index, true, p.id, p.name, ""}); break;
      case Piece::Kind::kCallArguments: d.tool_calls.push_back({p.index, false, "", "", p.text}); break;
    }
    out.push_back(std::move(d));
    prev = &p;
  }
  pending_.clear();
  return out;
}

}  // namespace kiln::http
