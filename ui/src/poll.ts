// Runs `f` now and then every `everyMs` while the component is mounted (and the tab visible);
// a slow answer delays the next call rather than piling calls up.
import { useEffect, useRef } from 'preact/hooks';

export function usePoll(f: () => Promise<void> | void, everyMs: number | (() => number), deps: unknown[] = []): void {
  // The latest render's function and interval, not the first's.
  const fn = useRef(f);
  fn.current = f;
  const every = useRef(everyMs);
  every.current = everyMs;
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const tick = async () => {
      if (stopped) return;
      if (document.visibilityState !== 'hidden') {
        try {
          await fn.current();
        } catch {
          // the page shows its own errors; keep polling
        }
      }
      if (stopped) return;
      const e = every.current;
      timer = window.setTimeout(tick, typeof e === 'function' ? e() : e);
    };
    tick();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, deps);
}
