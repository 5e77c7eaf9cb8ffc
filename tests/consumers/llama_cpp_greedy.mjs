// llama.cpp's greedy continuation of a prompt (through node-llama-cpp's prebuilt CPU library), for the generate
// consumer test: the prompt ids are evaluated from position 0 and llama.cpp's own sampler picks each next token
// at temperature 0 (argmax), with no penalties, for N tokens (it does not stop at EOS: the caller compares a
// fixed count). K/V cache in F32 unless SLMOPT_HARNESS_KV_TYPE says otherwise; CPU only, no downloads.
//
//   node llama_cpp_greedy.mjs MODEL.gguf "ID ID ID ..." N   → {"ids": [N generated ids]}
import fs from "node:fs";
import process from "node:process";
import { getQuietLlama, harnessThreads as threads } from "./llama_cpp_node.mjs";

function fail(message) {
  process.stderr.write(`llama_cpp_greedy: ${message}\n`);
  process.exit(2);
}

const [modelPath, idsArg, countArg] = process.argv.slice(2);
if (!modelPath || !idsArg || !countArg) fail('usage: llama_cpp_greedy.mjs MODEL.gguf "ID ID ..." N');
if (!fs.existsSync(modelPath)) fail(`no such model file: ${modelPath}`);
const prompt = idsArg.trim().split(/[\s,]+/).map(Number);
const count = Number.parseInt(countArg, 10);
if (!prompt.every((id) => Number.isInteger(id) && id >= 0) || !(count > 0)) fail("bad prompt ids or N");
const kvType = process.env.SLMOPT_HARNESS_KV_TYPE ?? "F32";

const llama = await getQuietLlama(threads);
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
const context = await model.createContext({
  contextSize: prompt.length + count + 16,
  batchSize: prompt.length + count,
  sequences: 1,
  threads,
  flashAttention: false,
  experimentalKvCacheKeyType: kvType,
  experimentalKvCacheValueType: kvType,
});
const sequence = context.getSequence();
const ids = [];
for await (const token of sequence.evaluate(prompt, { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 })) {
  ids.push(token);
  if (ids.length >= count) break;
}
await context.dispose();
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify({ ids }) + "\n");
