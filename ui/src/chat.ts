// A streamed POST /v1/chat/completions: gathers the answer's text, its reasoning
// (`reasoning_content`) and its tool calls from the chunks, and times it.
import { errorOf, request } from './api';
import { readSse } from './sse';

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
  reasoning?: string;
  toolCalls?: ToolCall[];
  stats?: ChatStats;
  error?: string;
}

export interface ChatStats {
  ttftMs?: number; // request sent -> first token
  tokens: number; // completion tokens (usage when the server sends it, else chunks seen)
  tokensPerSecond?: number; // after the first token
  finishReason?: string;
}

export interface ChatParams {
  model: string;
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  tools?: unknown[];
  tool_choice?: string;
  [other: string]: unknown;  // the rest of the chat API's parameters, as given
}

type Delta = {
  content?: string | null;
  reasoning_content?: string | null;
  tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[];
};

// Streams one answer to `messages`; `on` gets the assistant turn as it grows.
export async function streamChat(params: ChatParams, messages: { role: string; content: string }[],
                                 on: (t: ChatTurn) => void, signal?: AbortSignal): Promise<ChatTurn> {
  const turn: ChatTurn = { role: 'assistant', content: '', reasoning: '', toolCalls: [], stats: { tokens: 0 } };
  const t0 = performance.now();
  let tFirst: number | undefined;
  let chunks = 0;
  let usageTokens: number | undefined;
  const emit = () => on({ ...turn, toolCalls: turn.toolCalls!.map((c) => ({ ...c })), stats: { ...turn.stats! } });
  const res = await request('/v1/chat/completions', {
    method: 'POST',
    body: JSON.stringify({ ...params, messages, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok) {
    turn.error = (await errorOf(res)).message;
    emit();
    return turn;
  }
  for await (const ev of readSse(res, signal)) {
    if (ev.data === '[DONE]') break;
    let chunk: any;
    try {
      chunk = JSON.parse(ev.data);
    } catch {
      continue;
    }
    if (chunk.error) {
      turn.error = chunk.error.message ?? String(chunk.error);
      break;
    }
    if (chunk.usage?.completion_tokens !== undefined) usageTokens = chunk.usage.completion_tokens;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const d: Delta = choice.delta ?? {};
    const got = !!(d.content || d.reasoning_content || d.tool_calls?.length);
    if (got) {
      chunks++;
      if (tFirst === undefined) tFirst = performance.now();
    }
    if (d.content) turn.content += d.content;
    if (d.reasoning_content) turn.reasoning += d.reasoning_content;
    for (const tc of d.tool_calls ?? []) {
      const calls = turn.toolCalls!;
      while (calls.length <= tc.index) calls.push({ id: '', name: '', arguments: '' });
      const c = calls[tc.index];
      if (tc.id) c.id = tc.id;
      if (tc.function?.name) c.name += tc.function.name;
      if (tc.function?.arguments) c.arguments += tc.function.arguments;
    }
    if (choice.finish_reason) turn.stats!.finishReason = choice.finish_reason;
    turn.stats!.tokens = usageTokens ?? chunks;
    if (tFirst !== undefined) turn.stats!.ttftMs = tFirst - t0;
    emit();
  }
  const tEnd = performance.now();
  const st = turn.stats!;
  st.tokens = usageTokens ?? chunks;
  if (tFirst !== undefined) {
    st.ttftMs = tFirst - t0;
    // Tokens after the first, over the time after the first: the decode rate.
    if (tEnd > tFirst && st.tokens > 1) st.tokensPerSecond = ((st.tokens - 1) * 1000) / (tEnd - tFirst);
  }
  emit();
  return turn;
}
