// Second reference for kiln's tokenizer tests: @lenml/tokenizers (a JavaScript port of Hugging
// Face's tokenizers, from transformers.js). Reads JSON lines {"text": ...} on stdin and writes
// {"ids": [...]} per line: the encoding without special tokens.
// usage: node tests/text/lenml_reference.mjs TOKENIZER_DIR < lines.jsonl
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { TokenizerLoader } from "@lenml/tokenizers";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node lenml_reference.mjs TOKENIZER_DIR < lines.jsonl");
  process.exit(2);
}
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(`${dir}/tokenizer.json`, "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8")),
});
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
for await (const line of rl) {
  if (!line) continue;
  const { text } = JSON.parse(line);
  out.push(JSON.stringify({ ids: tokenizer.encode(text, { add_special_tokens: false }) }));
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
