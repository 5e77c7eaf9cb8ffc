// llama.cpp's own tokenizer (node-llama-cpp's prebuilt CPU library) on the vocabulary of a GGUF file, loaded
// vocabulary-only (a file with tensors loads the same way; its tensors are not read).
//
// Usage: node llama_cpp_tokenize.mjs MODEL.gguf TEXTS.json
//   TEXTS.json is a JSON array of strings. Prints one JSON array per text (one per line): the ids llama.cpp
//   gives with no BOS/EOS and special-token text not parsed (llama_tokenize(add_special = false,
//   parse_special = false), as llama.cpp's test-tokenizer-0 does). Quiet: llama.cpp's log lines go to stderr
//   and only errors unless SLMOPT_HARNESS_VERBOSE=1. Works offline.
import fs from "node:fs";
import process from "node:process";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, textsPath] = process.argv.slice(2);
if (!modelPath || !textsPath) {
  process.stderr.write("usage: node llama_cpp_tokenize.mjs MODEL.gguf TEXTS.json\n");
  process.exit(2);
}
const verbose = process.env.SLMOPT_HARNESS_VERBOSE === "1";
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) {
  process.stderr.write(`llama_cpp_tokenize: ${textsPath} is not a JSON array of strings\n`);
  process.exit(2);
}
const llama = await getLlama({
  build: "never",
  gpu: false,
  usePrebuiltBinaries: true,
  skipDownload: true,
  progressLogs: false,
  maxThreads: 1,
  logLevel: verbose ? LlamaLogLevel.debug : LlamaLogLevel.error,
  logger: (level, message) => {
    if (verbose || level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(message);
  },
});
const model = await llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
const out = texts.map((t) => JSON.stringify(Array.from(model.tokenize(t, false))));
process.stdout.write(out.join("\n") + "\n");
await model.dispose();
await llama.dispose();
