// llama.cpp's own tokenizer (node-llama-cpp's prebuilt CPU library) on the vocabulary of GGUF files, loaded
// vocabulary-only (a file with tensors loads the same way; its tensors are not read).
//
// Usage: node llama_cpp_tokenize.mjs TEXTS.json MODEL.gguf...
//   TEXTS.json is a JSON array of strings. For each model in turn, prints one JSON array per text (one per
//   line; models one after the other, one llama.cpp initialisation for all of them): the ids llama.cpp
//   gives with no BOS/EOS and special-token text not parsed (llama_tokenize(add_special = false,
//   parse_special = false), as llama.cpp's test-tokenizer-0 does). Quiet: llama.cpp's log lines go to stderr
//   and only errors unless SLMOPT_HARNESS_VERBOSE=1. Works offline.
import fs from "node:fs";
import process from "node:process";
import { getQuietLlama } from "./llama_cpp_node.mjs";

const [textsPath, ...modelPaths] = process.argv.slice(2);
if (!textsPath || modelPaths.length === 0) {
  process.stderr.write("usage: node llama_cpp_tokenize.mjs TEXTS.json MODEL.gguf...\n");
  process.exit(2);
}
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) {
  process.stderr.write(`llama_cpp_tokenize: ${textsPath} is not a JSON array of strings\n`);
  process.exit(2);
}
const llama = await getQuietLlama(1);
for (const modelPath of modelPaths) {
  if (!fs.existsSync(modelPath)) {
    process.stderr.write(`llama_cpp_tokenize: no such file: ${modelPath}\n`);
    process.exit(2);
  }
  const model = await llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
  const out = texts.map((t) => JSON.stringify(Array.from(model.tokenize(t, false))));
  process.stdout.write(out.join("\n") + "\n");
  await model.dispose();
}
await llama.dispose();
