// llama.cpp's prompt throughput on a GGUF file (through node-llama-cpp's prebuilt CPU library), for
// scripts/bench_eval.sh: the model is loaded once (mmap), then a window of CTX random token ids is evaluated
// from position 0 REPEATS times (the pp512 measurement of llama-bench: one batch of CTX tokens, logits of the
// last one). Threads: SLMOPT_HARNESS_THREADS (default 2). K/V cache in llama.cpp's default F16.
//
//   node llama_cpp_prompt_speed.mjs MODEL.gguf CTX REPEATS
//       → {"ctx", "threads", "tokens_per_second": [one per repeat], "load_seconds", "max_rss_kb"}
import fs from "node:fs";
import process from "node:process";
import { getQuietLlama, harnessThreads as threads } from "./llama_cpp_node.mjs";

function fail(message) {
  process.stderr.write(`llama_cpp_prompt_speed: ${message}\n`);
  process.exit(2);
}

const [modelPath, ctxArg, repeatsArg] = process.argv.slice(2);
if (!modelPath || !ctxArg || !repeatsArg) fail("usage: llama_cpp_prompt_speed.mjs MODEL.gguf CTX REPEATS");
if (!fs.existsSync(modelPath)) fail(`no such model file: ${modelPath}`);
const ctx = Number.parseInt(ctxArg, 10);
const repeats = Number.parseInt(repeatsArg, 10);
if (!(ctx > 1) || !(repeats > 0)) fail("CTX must be > 1 and REPEATS > 0");

const loadStart = performance.now();
const llama = await getQuietLlama(threads);
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 32000;
// Room beyond the window: with a full context node-llama-cpp would shift it before evaluating.
const context = await model.createContext({ contextSize: ctx + 16, batchSize: ctx, sequences: 1, threads });
const sequence = context.getSequence();
const loadSeconds = (performance.now() - loadStart) / 1000;

// Deterministic ids (a 32-bit LCG): throughput does not depend on them.
let state = 12345;
const ids = Array.from({ length: ctx }, () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state % nVocab;
});

const rates = [];
for (let r = 0; r < repeats; ++r) {
  await sequence.clearHistory();
  const start = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(ids);
  rates.push(ctx / ((performance.now() - start) / 1000));
}
await context.dispose();
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify({
  ctx,
  threads,
  tokens_per_second: rates,
  load_seconds: loadSeconds,
  max_rss_kb: process.resourceUsage().maxRSS,
}) + "\n");
