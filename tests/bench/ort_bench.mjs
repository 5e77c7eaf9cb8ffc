// ONNX Runtime CPU latency of exported decoders: for each model, a prompt of --prompt tokens (default 128) in one
// run, then --tokens (default 32) greedy tokens one at a time through the KV cache. Each model is measured
// --repeats times (default 5) after a warm-up; the table reports medians and the size of the model files
// (model.onnx + model.onnx.data when present).
//
//   node tests/bench/ort_bench.mjs --tokens-file ids.json [--threads 1] [--prompt 128] [--tokens 32] \
//        [--repeats 5] label=path/model.onnx ...
//
// onnxruntime-node resolves from tests/consumers/node_modules (through ort_decoder.mjs). The exports come from
// `slmopt compile --format onnx`, or from the consumer test OrtBench.DISABLED_ExportAndMeasure, which writes
// every variant and runs this script.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const {Decoder, argmaxRow, ort} = await import(path.join(here, '../consumers/ort_decoder.mjs'));

const opts = {threads: 1, prompt: 128, tokens: 32, repeats: 5};
const models = [];
for (let i = 2; i < process.argv.length; ++i) {
  const a = process.argv[i];
  if (a.startsWith('--')) opts[a.slice(2).replace(/-/g, '_')] = process.argv[++i];
  else models.push(a.includes('=') ? a.split(/=(.*)/s).slice(0, 2) : [path.basename(path.dirname(a)), a]);
}
if (!opts.tokens_file || models.length === 0) {
  process.stderr.write('usage: ort_bench.mjs --tokens-file ids.json [options] label=model.onnx ...\n');
  process.exit(2);
}
const ids = JSON.parse(fs.readFileSync(opts.tokens_file, 'utf8'));
const promptLength = Number(opts.prompt), genTokens = Number(opts.tokens), repeats = Number(opts.repeats);
const prompt = Array.from({length: promptLength}, (_, i) => ids[i % ids.length]);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rows = [];
for (const [label, file] of models) {
  const session = await ort.InferenceSession.create(file, {
    executionProviders: ['cpu'], intraOpNumThreads: Number(opts.threads), interOpNumThreads: 1,
    graphOptimizationLevel: 'all'});
  const decoder = new Decoder(session);
  await decoder.run(prompt.slice(0, 16), decoder.emptyPast(), 0);  // warm-up
  const promptMs = [], tokenMs = [];
  for (let r = 0; r < repeats; ++r) {
    const t0 = performance.now();
    let {logits, vocab, past} = await decoder.run(prompt, decoder.emptyPast(), 0);
    promptMs.push(performance.now() - t0);
    let next = argmaxRow(logits, prompt.length - 1, vocab);
    const t1 = performance.now();
    for (let i = 0; i < genTokens; ++i) {
      const out = await decoder.run([next], past, prompt.length + i);
      past = out.past;
      next = argmaxRow(out.logits, 0, vocab);
    }
    tokenMs.push((performance.now() - t1) / genTokens);
  }
  let bytes = fs.statSync(file).size;
  if (fs.existsSync(file + '.data')) bytes += fs.statSync(file + '.data').size;
  rows.push({label, size_kib: Math.round(bytes / 1024), prompt_ms: median(promptMs), token_ms: median(tokenMs)});
}
console.log(`| model | size (KiB) | prompt ${promptLength} tok (ms) | per token (ms) |`);
console.log('|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.label} | ${r.size_kib} | ${r.prompt_ms.toFixed(2)} | ${r.token_ms.toFixed(3)} |`);
console.log(JSON.stringify(rows));
