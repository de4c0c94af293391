// Playground: a streamed chat with a chosen model through POST /v1/chat/completions, with its
// sampling parameters; shows the reasoning apart from the answer, tool calls as such, and each
// answer's time to first token and tokens per second. Models come from GET /v1/models.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, getJson } from '../api';
import { ChatTurn, streamChat } from '../chat';
import { ms } from '../format';

function numOrUndefined(s: string): number | undefined {
  if (s.trim() === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

function Turn({ t }: { t: ChatTurn }) {
  return (
    <div class={`turn ${t.role}`} data-role={t.role}>
      <div class="who">{t.role}</div>
      {t.reasoning ? (
        <details class="reasoning" open data-testid="reasoning">
          <summary>Reasoning</summary>
          <pre>{t.reasoning}</pre>
        </details>
      ) : null}
      {t.content ? <div class="content" data-testid={t.role === 'assistant' ? 'answer' : undefined}>{t.content}</div> : null}
      {t.toolCalls?.map((c) => (
        <div class="tool-call" data-testid="tool-call">
          <span class="tag">tool call</span> <code>{c.name}</code>
          <pre>{c.arguments}</pre>
        </div>
      ))}
      {t.error && <div class="error-text">{t.error}</div>}
      {t.stats && (
        <div class="stats muted" data-testid="stats">
          TTFT {ms(t.stats.ttftMs)} · {t.stats.tokensPerSecond ? `${t.stats.tokensPerSecond.toFixed(1)} tokens/s` : '— tokens/s'} ·{' '}
          {t.stats.tokens} tokens{t.stats.finishReason ? ` · ${t.stats.finishReason}` : ''}
        </div>
      )}
    </div>
  );
}

export function PlaygroundPage() {
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState(localStorage.getItem('kiln.playground.model') ?? '');
  const [system, setSystem] = useState('');
  const [temperature, setTemperature] = useState('0.7');
  const [topP, setTopP] = useState('');
  const [maxTokens, setMaxTokens] = useState('256');
  const [seed, setSeed] = useState('');
  const [tools, setTools] = useState('');
  const [toolChoice, setToolChoice] = useState('auto');
  const [extra, setExtra] = useState('');
  const [turns, setTurns] = useState<ChatTurn[]>([]);
  const [input, setInput] = useState('');
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    getJson<{ data: { id: string }[] }>('/v1/models').then(
      (r) => {
        const ids = r.data.map((m) => m.id);
        setModels(ids);
        if (!ids.includes(model) && ids.length > 0) setModel(ids[0]);
      },
      (e: ApiError) => setError(e.message),
    );
  }, []);

  const send = async (e: Event) => {
    e.preventDefault();
    if (!input.trim() || !model || running) return;
    let toolList: unknown[] | undefined;
    if (tools.trim()) {
      try {
        toolList = JSON.parse(tools);
        if (!Array.isArray(toolList)) throw new Error('not an array');
      } catch (err) {
        setError(`Tools: a JSON array of {"type": "function", "function": {...}} (${(err as Error).message})`);
        return;
      }
    }
    let extraParams: Record<string, unknown> = {};
    if (extra.trim()) {
      try {
        extraParams = JSON.parse(extra);
        if (!extraParams || typeof extraParams !== 'object' || Array.isArray(extraParams)) throw new Error('not an object');
      } catch (err) {
        setError(`Extra parameters: a JSON object, e.g. {"top_k": 40} (${(err as Error).message})`);
        return;
      }
    }
    setError(null);
    localStorage.setItem('kiln.playground.model', model);
    const history = [...turns.filter((t) => !t.error), { role: 'user' as const, content: input }];
    setTurns([...history, { role: 'assistant', content: '' }]);
    setInput('');
    setRunning(true);
    abort.current = new AbortController();
    const messages = [
      ...(system.trim() ? [{ role: 'system', content: system }] : []),
      ...history.map((t) => ({ role: t.role, content: t.content })),
    ];
    const params = {
      model,
      tools: toolList,
      tool_choice: toolList ? toolChoice : undefined,
      temperature: numOrUndefined(temperature),
      top_p: numOrUndefined(topP),
      max_tokens: numOrUndefined(maxTokens),
      seed: numOrUndefined(seed),
      ...extraParams,  // anything else of the chat API, taking precedence over the fields above
    };
    try {
      await streamChat(params, messages, (t) => setTurns([...history, t]), abort.current.signal);
    } catch (err) {
      if ((err as Error).name !== 'AbortError') setError((err as Error).message);
    }
    setRunning(false);
  };

  return (
    <section class="playground">
      <h1>Playground</h1>
      {error && <p class="error-text">{error}</p>}
      <div class="params">
        <label>
          Model
          <select name="model" value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            {models.map((id) => <option value={id}>{id}</option>)}
          </select>
        </label>
        <label>Temperature<input name="temperature" type="number" step="0.1" min="0" max="2" value={temperature} onInput={(e) => setTemperature(e.currentTarget.value)} /></label>
        <label>top_p<input name="top_p" type="number" step="0.05" min="0" max="1" placeholder="default" value={topP} onInput={(e) => setTopP(e.currentTarget.value)} /></label>
        <label>max_tokens<input name="max_tokens" type="number" min="1" value={maxTokens} onInput={(e) => setMaxTokens(e.currentTarget.value)} /></label>
        <label>Seed<input name="seed" type="number" placeholder="random" value={seed} onInput={(e) => setSeed(e.currentTarget.value)} /></label>
      </div>
      <label class="system">
        System prompt
        <textarea name="system" rows={2} value={system} onInput={(e) => setSystem(e.currentTarget.value)} />
      </label>
      <details class="tools">
        <summary class="muted">Tools and other parameters</summary>
        <label>
          Tools (a JSON array, as in OpenAI's API)
          <textarea name="tools" rows={4} placeholder='[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]'
            value={tools} onInput={(e) => setTools(e.currentTarget.value)} />
        </label>
        <label class="inline">
          tool_choice
          <select name="tool_choice" value={toolChoice} onChange={(e) => setToolChoice(e.currentTarget.value)}>
            {['auto', 'required', 'none'].map((c) => <option value={c}>{c}</option>)}
          </select>
        </label>
        <label>
          Other parameters of /v1/chat/completions (a JSON object)
          <textarea name="extra" rows={2} placeholder='{"top_k": 40, "reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": false}}'
            value={extra} onInput={(e) => setExtra(e.currentTarget.value)} />
        </label>
      </details>
      <div class="conversation" data-testid="conversation">
        {turns.map((t) => <Turn t={t} />)}
      </div>
      <form class="composer" onSubmit={send}>
        <textarea
          name="message"
          rows={3}
          placeholder="Message (Enter sends, Shift+Enter for a new line)"
          value={input}
          onInput={(e) => setInput(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              (e.currentTarget.form as HTMLFormElement).requestSubmit();
            }
          }}
        />
        <div class="row">
          {running ? (
            <button type="button" class="secondary" onClick={() => abort.current?.abort()}>Stop</button>
          ) : (
            <button type="submit" disabled={!model}>Send</button>
          )}
          <button type="button" class="secondary" disabled={running} onClick={() => setTurns([])}>Clear</button>
        </div>
      </form>
    </section>
  );
}
