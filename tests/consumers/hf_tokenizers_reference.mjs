// Reference token ids from Hugging Face's own pure-JavaScript tokenizers (@huggingface/tokenizers), an
// implementation independent of slmopt's, used to cross-check text/tokenizer.
//
// Usage: node hf_tokenizers_reference.mjs <tokenizer.json> <text file> [--whole] [--texts] [--special]
//   default    one JSON array of ids per line of the text file (each line without its "\n")
//   --whole    one JSON array for the whole file
//   --texts    the text file is a JSON array of strings: one JSON array of ids per string, one per line
//   --special  add the tokenizer's special tokens (BOS/EOS per its post-processor); off by default
// Works offline: it reads only the files it is given.
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith("--")));
const [tokenizerPath, textPath] = args.filter((a) => !a.startsWith("--"));
if (!tokenizerPath || !textPath) {
  console.error("usage: node hf_tokenizers_reference.mjs <tokenizer.json> <text file> [--whole] [--special]");
  process.exit(2);
}
const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, "utf8")), {});
const text = readFileSync(textPath, "utf8");
const options = { add_special_tokens: flags.has("--special") };
const pieces = flags.has("--texts") ? JSON.parse(text) : flags.has("--whole") ? [text] : text.split("\n");
const out = pieces.map((piece) => JSON.stringify(tokenizer.encode(piece, options).ids));
process.stdout.write(out.join("\n") + "\n");
