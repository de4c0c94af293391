// Reads Prometheus' text format (GET /metrics) into samples: enough for the Live page, which
// sums series by a label.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm: RegExpExecArray | null;
      while ((lm = re.exec(m[3])) !== null) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// name's samples summed by the value of `label` ("" for series without it).
export function sumBy(samples: Sample[], name: string, label: string, keep?: (s: Sample) => boolean): Map<string, number> {
  const r = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name || (keep && !keep(s))) continue;
    const k = s.labels[label] ?? '';
    r.set(k, (r.get(k) ?? 0) + s.value);
  }
  return r;
}
