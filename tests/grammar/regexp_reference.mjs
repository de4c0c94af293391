// Reference for kiln's regex dialect: reads JSON lines {"pattern": p, "strings": [...]} on stdin and
// writes, per line, {"ok": bool, "search": [bool...], "full": [bool...]}: whether p matches
// somewhere in each string (RegExp.test, JSON Schema's reading) and whether it matches the whole
// string, as ECMAScript's RegExp reads it with the u flag (JSON Schema's dialect), or without it for patterns
// only the legacy (Annex B) syntax accepts. ok is false when RegExp refuses the pattern.
import readline from 'node:readline';

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
for await (const line of rl) {
  if (!line) continue;
  const { pattern, strings } = JSON.parse(line);
  let search = null;
  let full = null;
  for (const flags of ['u', '']) {
    try {
      search = new RegExp(pattern, flags);
      full = new RegExp('^(?:' + pattern + ')$', flags);
      break;
    } catch {
      search = full = null;
    }
  }
  out.push(JSON.stringify(search ? { ok: true, search: strings.map((s) => search.test(s)), full: strings.map((s) => full.test(s)) }
                                 : { ok: false }));
}
process.stdout.write(out.join('\n') + '\n');
