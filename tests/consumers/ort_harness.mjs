// ONNX Runtime (onnxruntime-node, CPU execution provider) as an independent consumer of slmopt's ONNX files.
// Runs a decoder with the KV-cache interface of io/onnx_export.h on token ids and prints one JSON object.
//
//   node ort_harness.mjs --model M.onnx --tokens ids.json [--mode full|step] [--logits-out F]
//        [--generate N] [--bench-prompt P --bench-tokens G] [--threads T]
//
//   --mode full   the whole sequence in one run (past length 0)      → logits [T, vocab]
//   --mode step   one token per run, feeding present.* back as past  → logits [T, vocab]
//   output: {"mean_nll": …, "argmax": [...], "tokens": T, "vocab": V}; --logits-out writes the float32 logits
//   (row-major, little-endian).
//   --generate N  greedy: the prompt in one run, then N tokens one at a time with the cache
//                 ("cached"), and the same N tokens by re-running the whole sequence each time ("recompute").
//   --mode padded-batch --pad N   batch 2: the ids, and the same ids left-padded by N (attention_mask 0,
//                 position_ids restarting after the padding), prompt run and then one cached step; reports the
//                 largest logit difference of the padded row against the unpadded batch-1 run.
//   --optimization LEVEL   graphOptimizationLevel (disabled, basic, extended, all; default all).
//   --session-config K=V[,K=V...]   session config entries (onnxruntime_session_options_config_keys.h), e.g.
//                 session.qdq_matmulnbits_accuracy_level=0: ORT fuses a weight-only int8 DequantizeLinear→MatMul
//                 into an 8-bit MatMulNBits that by default (level 4) rounds the activations to int8.
//   --bench-prompt P --bench-tokens G   timing: a P-token prompt (first P ids, repeated if needed), then G
//                 greedy tokens; reports median-free plain wall times in milliseconds.
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import {Decoder, argmaxRow} from './ort_decoder.mjs';

function parseArgs(argv) {
  const args = {mode: 'full', threads: 1};
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-/g, '_');
    args[key] = argv[i + 1];
  }
  return args;
}

function fail(message) {
  process.stderr.write(`ort_harness: ${message}\n`);
  process.exit(2);
}

function meanNll(logits, ids, vocab) {
  let total = 0;
  for (let i = 0; i + 1 < ids.length; ++i) {
    let max = -Infinity;
    for (let j = 0; j < vocab; ++j) max = Math.max(max, logits[i * vocab + j]);
    let sum = 0;
    for (let j = 0; j < vocab; ++j) sum += Math.exp(logits[i * vocab + j] - max);
    total += max + Math.log(sum) - logits[i * vocab + ids[i + 1]];
  }
  return ids.length > 1 ? total / (ids.length - 1) : 0;
}

async function logitsFor(decoder, ids, mode) {
  if (mode === 'full') return await decoder.run(ids, decoder.emptyPast(), 0);
  if (mode !== 'step') fail(`unknown --mode ${mode}`);
  let past = decoder.emptyPast(), vocab = 0, rows = [];
  for (let i = 0; i < ids.length; ++i) {
    const r = await decoder.run([ids[i]], past, i);
    past = r.past;
    vocab = r.vocab;
    rows.push(r.logits);
  }
  const logits = new Float32Array(ids.length * vocab);
  rows.forEach((row, i) => logits.set(row, i * vocab));
  return {logits, vocab};
}

function int64(values, dims) {
  return new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
}

// Left padding and batching: row 1 = N pad tokens (id 0, masked) + ids[0 .. L−N), positions 0.. after the pad.
async function paddedBatch(decoder, ids, pad) {
  const L = ids.length, n = L - pad;
  if (pad <= 0 || n < 2) fail('--pad must be between 1 and the token count − 2');
  const reference = await decoder.run(ids, decoder.emptyPast(), 0);
  const vocab = reference.vocab;
  const row1 = new Array(pad).fill(0).concat(ids.slice(0, n));
  const mask1 = new Array(pad).fill(0).concat(new Array(n).fill(1));
  const pos1 = new Array(pad).fill(0).concat(Array.from({length: n}, (_, i) => i));
  const past = decoder.emptyPast();
  for (const name of decoder.pastNames) past[name] = new ort.Tensor('float32', new Float32Array(0), [2, past[name].dims[1], 0, past[name].dims[3]]);
  let out = await decoder.session.run({
    input_ids: int64(ids.concat(row1), [2, L]),
    attention_mask: int64(new Array(L).fill(1).concat(mask1), [2, L]),
    position_ids: int64(Array.from({length: L}, (_, i) => i).concat(pos1), [2, L]),
    ...past});
  let promptDiff = 0;
  for (let j = 0; j < n; ++j)
    for (let v = 0; v < vocab; ++v)
      promptDiff = Math.max(promptDiff, Math.abs(out.logits.data[(L + pad + j) * vocab + v] - reference.logits[j * vocab + v]));
  // One cached step: row 1 continues with ids[n] at position n (row 0 repeats its last token; not checked).
  const stepPast = {};
  for (const name of decoder.pastNames) stepPast[name] = out[name.replace('past_key_values.', 'present.')];
  out = await decoder.session.run({
    input_ids: int64([ids[L - 1], ids[n]], [2, 1]),
    attention_mask: int64(new Array(L + 1).fill(1).concat(mask1, [1]), [2, L + 1]),
    position_ids: int64([L, n], [2, 1]),
    ...stepPast});
  let stepDiff = 0;
  for (let v = 0; v < vocab; ++v)
    stepDiff = Math.max(stepDiff, Math.abs(out.logits.data[vocab + v] - reference.logits[n * vocab + v]));
  let lo = Infinity, hi = -Infinity;
  for (const x of reference.logits) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  return {prompt_max_diff: promptDiff, step_max_diff: stepDiff, logit_range: hi - lo};
}

async function generate(decoder, prompt, count) {
  let {logits, vocab, past} = await decoder.run(prompt, decoder.emptyPast(), 0);
  const cached = [];
  let next = argmaxRow(logits, prompt.length - 1, vocab);
  for (let i = 0; i < count; ++i) {
    cached.push(next);
    if (i + 1 === count) break;
    const r = await decoder.run([next], past, prompt.length + i);
    past = r.past;
    next = argmaxRow(r.logits, 0, vocab);
  }
  const recompute = [];
  const seq = prompt.slice();
  for (let i = 0; i < count; ++i) {
    const r = await decoder.run(seq, decoder.emptyPast(), 0);
    const t = argmaxRow(r.logits, seq.length - 1, vocab);
    recompute.push(t);
    seq.push(t);
  }
  return {cached, recompute};
}

async function bench(decoder, ids, promptLength, tokens) {
  const prompt = [];
  while (prompt.length < promptLength) prompt.push(ids[prompt.length % ids.length]);
  await decoder.run(prompt.slice(0, 8), decoder.emptyPast(), 0);  // warm-up
  const t0 = performance.now();
  let {logits, vocab, past} = await decoder.run(prompt, decoder.emptyPast(), 0);
  const t1 = performance.now();
  let next = argmaxRow(logits, prompt.length - 1, vocab);
  const perToken = [];
  for (let i = 0; i < tokens; ++i) {
    const s = performance.now();
    const r = await decoder.run([next], past, prompt.length + i);
    perToken.push(performance.now() - s);
    past = r.past;
    next = argmaxRow(r.logits, 0, vocab);
  }
  perToken.sort((a, b) => a - b);
  return {prompt_ms: t1 - t0, token_ms_median: perToken[Math.floor(perToken.length / 2)],
          token_ms_mean: perToken.reduce((a, b) => a + b, 0) / perToken.length};
}

const args = parseArgs(process.argv);
if (!args.model || !args.tokens) fail('usage: --model M.onnx --tokens ids.json [...]');
const ids = JSON.parse(fs.readFileSync(args.tokens, 'utf8'));
if (!Array.isArray(ids) || ids.length === 0 || !ids.every(Number.isInteger)) fail(`${args.tokens}: expected a JSON array of token ids`);
const threads = Number(args.threads);
// "session.a=1,session.b=2" → {session: {a: "1", b: "2"}}, the shape onnxruntime-node's `extra` takes.
const extra = {};
for (const entry of (args.session_config ?? '').split(',').filter(Boolean)) {
  const m = entry.match(/^([a-z_]+)\.([a-z_.]+)=(.*)$/);
  if (!m) fail(`--session-config: '${entry}' is not SECTION.KEY=VALUE`);
  (extra[m[1]] ??= {})[m[2]] = m[3];
}
const session = await ort.InferenceSession.create(args.model, {
  executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
  graphOptimizationLevel: args.optimization ?? 'all', extra});
const decoder = new Decoder(session);
const result = {};
if (args.generate) {
  Object.assign(result, await generate(decoder, ids, Number(args.generate)));
} else if (args.mode === 'padded-batch') {
  Object.assign(result, await paddedBatch(decoder, ids, Number(args.pad ?? 3)));
} else if (args.bench_prompt) {
  Object.assign(result, await bench(decoder, ids, Number(args.bench_prompt), Number(args.bench_tokens ?? 32)));
} else {
  const {logits, vocab} = await logitsFor(decoder, ids, args.mode);
  if (args.logits_out) fs.writeFileSync(args.logits_out, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  const argmax = [];
  for (let i = 0; i < ids.length; ++i) argmax.push(argmaxRow(logits, i, vocab));
  Object.assign(result, {mean_nll: meanNll(logits, ids, vocab), argmax, tokens: ids.length, vocab});
}
process.stdout.write(JSON.stringify(result) + '\n');
