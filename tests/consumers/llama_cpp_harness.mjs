// Runs llama.cpp (through node-llama-cpp's prebuilt CPU library) on a GGUF file so that slmopt's tests can
// compare its tokenizer and its logits with slmopt's own. Deterministic and quiet: CPU only, no builds or
// downloads, fixed thread count, llama.cpp's log lines go to stderr (only errors, unless
// SLMOPT_HARNESS_VERBOSE=1); stdout carries exactly one JSON document.
//
//   node llama_cpp_harness.mjs tokenize MODEL.gguf TEXTFILE
//       → {"lines": [[ids of line 1], ...], "whole": [ids of the whole file]}
//         Lines are split on "\n" (the newline itself is not part of a line; a trailing empty line is dropped).
//         No BOS/EOS is added and special-token text is not parsed: the plain text tokenizer.
//         llama.cpp aborts the whole process (an uncaught std::out_of_range in byte_to_token) on a character
//         that a SentencePiece-style ("llama") vocabulary has neither as a token nor as <0xNN> byte tokens; such
//         lines (and the whole file, if it has any) come back as null instead of being handed to llama.cpp.
//   node llama_cpp_harness.mjs eval MODEL.gguf IDSFILE OUT.bin
//       IDSFILE holds token ids: a JSON array of windows ([[ids], [ids], ...]), or one window as a JSON array or
//       as numbers separated by white space. Each window is evaluated from position 0 with a fresh cache.
//       Writes the float32 logits of every position of every window, row-major [n_tokens, n_vocab]
//       little-endian, to OUT.bin and prints {"n_tokens", "n_vocab", "mean_nll", "argmax": [...], "windows":
//       [{"n_tokens", "mean_nll"}]}: mean_nll is the mean of −log p(token i+1 | row i) over i = 0 .. len−2 of
//       every window (computed in double), argmax[r] the top token of row r.
//   node llama_cpp_harness.mjs eval-many IDSFILE OUTDIR MODEL.gguf...
//       eval for several files in one process (one llama.cpp initialisation): the logits of the k-th model go to
//       OUTDIR/k.bin, stdout carries {"models": [{"path", ...the eval document...}, ...]} in argument order.
import fs from "node:fs";
import process from "node:process";
import { getQuietLlama, harnessThreads as threads } from "./llama_cpp_node.mjs";

// One llama.cpp instance per process: eval-many loads its models one after the other through it.
let sharedLlama = null;

function fail(message) {
  process.stderr.write(`llama_cpp_harness: ${message}\n`);
  process.exit(2);
}

function usage() {
  fail("usage: llama_cpp_harness.mjs tokenize MODEL.gguf TEXTFILE | eval MODEL.gguf IDSFILE OUT.bin | " +
       "eval-many IDSFILE OUTDIR MODEL.gguf...");
}

const kvType = process.env.SLMOPT_HARNESS_KV_TYPE ?? "F32";

async function loadModel(modelPath) {
  if (!fs.existsSync(modelPath)) fail(`no such model file: ${modelPath}`);
  const llama = sharedLlama ?? (await getQuietLlama());
  const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true, checkTensors: true });
  return { llama, model };
}

// A list of windows: a JSON array of arrays of ids, a JSON array of ids (one window), or numbers separated by
// white space (one window).
function readWindows(path) {
  const text = fs.readFileSync(path, "utf8").trim();
  let windows = text.startsWith("[") ? JSON.parse(text) : [text.split(/\s+/).filter((s) => s.length > 0).map(Number)];
  if (windows.length > 0 && !Array.isArray(windows[0])) windows = [windows];
  for (const ids of windows)
    if (ids.length === 0 || !ids.every((id) => Number.isInteger(id) && id >= 0))
      fail(`${path}: expected non-empty windows of non-negative integer token ids`);
  if (windows.length === 0) fail(`${path}: no token ids`);
  return windows;
}

// For "llama" vocabularies: a predicate telling whether llama.cpp can tokenize a text without aborting (every
// character is a token, or each of its bytes is a <0xNN> token or a one-byte token). null for other vocabularies.
function spmCanTokenize(model) {
  const ggml = model.fileInfo.metadata?.tokenizer?.ggml;
  if (ggml?.model !== "llama" || !Array.isArray(ggml.tokens)) return null;
  const known = new Set(ggml.tokens);
  const hex = (b) => b.toString(16).toUpperCase().padStart(2, "0");
  const encoder = new TextEncoder();
  const byteOk = (b) => known.has(`<0x${hex(b)}>`) || (b < 0x80 && known.has(String.fromCharCode(b)));
  return (text) => {
    for (const ch of text) {
      const piece = ch === " " ? "\u2581" : ch;
      if (!known.has(piece) && !Array.from(encoder.encode(piece)).every(byteOk)) return false;
    }
    return true;
  };
}

async function tokenize(modelPath, textPath) {
  const { llama, model } = await loadModel(modelPath);
  const text = fs.readFileSync(textPath, "utf8");
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const canTokenize = spmCanTokenize(model) ?? (() => true);
  const tokenizeOrNull = (t) => (canTokenize(t) ? Array.from(model.tokenize(t, false)) : null);
  const result = {
    lines: lines.map(tokenizeOrNull),
    whole: tokenizeOrNull(text),
  };
  process.stdout.write(JSON.stringify(result) + "\n");
  await model.dispose();
  await llama.dispose();
}

function logSumExp(row) {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return max + Math.log(sum);
}

async function evaluate(modelPath, idsPath, outPath) {
  const result = await evaluateWindows(modelPath, readWindows(idsPath), outPath);
  process.stdout.write(JSON.stringify(result) + "\n");
}

async function evaluateMany(idsPath, outDir, modelPaths) {
  const windows = readWindows(idsPath);
  if (modelPaths.length === 0) usage();
  const models = [];
  for (const [k, modelPath] of modelPaths.entries())
    models.push({ path: modelPath, ...(await evaluateWindows(modelPath, windows, `${outDir}/${k}.bin`)) });
  process.stdout.write(JSON.stringify({ models }) + "\n");
  if (sharedLlama) await sharedLlama.dispose();
}

// Evaluates the windows on one model, writes the logits to outPath and returns the eval document. Inside
// eval-many the llama.cpp instance stays alive for the next model.
async function evaluateWindows(modelPath, windows, outPath) {
  const keepLlama = sharedLlama != null;
  const { llama, model } = await loadModel(modelPath);
  // llama.cpp's vocabulary size is the length of the token list.
  const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length;
  if (!Number.isInteger(nVocab) || nVocab <= 0) fail(`${modelPath}: no tokenizer.ggml.tokens`);
  const longest = Math.max(...windows.map((w) => w.length));
  for (const ids of windows)
    for (const id of ids) if (id >= nVocab) fail(`token id ${id} is outside the vocabulary of ${nVocab}`);
  const context = await model.createContext({
    // Room beyond the last token: with a full context node-llama-cpp shifts it before the final evaluation.
    contextSize: longest + 16,
    batchSize: longest,
    sequences: 1,
    threads,
    flashAttention: false,
    // llama.cpp caches K/V in F16 by default; F32 keeps the cache from adding its own rounding to what the
    // comparison measures (SLMOPT_HARNESS_KV_TYPE=F16 gives llama.cpp's default).
    experimentalKvCacheKeyType: kvType,
    experimentalKvCacheValueType: kvType,
  });
  const sequence = context.getSequence();
  // Logits straight from the model: no sampling transforms (temperature 0, no top-k/top-p/min-p, no penalties).
  const options = { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 };

  const total = windows.reduce((n, w) => n + w.length, 0);
  const logits = new Float32Array(total * nVocab);
  const argmax = [];
  const perWindow = [];
  let nllSum = 0;
  let nllTerms = 0;
  let row0 = 0;
  for (const ids of windows) {
    await sequence.clearHistory();  // every window starts at position 0
    const outputs = await sequence.controlledEvaluate(ids.map((id) => [id, { generateNext: { logits: true, options } }]));
    let windowNll = 0;
    for (let i = 0; i < ids.length; ++i) {
      const map = outputs[i]?.next?.logits;
      if (map == null || map.size !== nVocab) fail(`position ${i}: expected ${nVocab} logits, got ${map?.size ?? 0}`);
      const row = logits.subarray((row0 + i) * nVocab, (row0 + i + 1) * nVocab);
      for (const [token, value] of map) row[token] = value;
      let best = 0;
      for (let t = 1; t < nVocab; ++t) if (row[t] > row[best]) best = t;
      argmax.push(best);
      if (i + 1 < ids.length) windowNll += logSumExp(row) - row[ids[i + 1]];
    }
    perWindow.push({ n_tokens: ids.length, mean_nll: ids.length > 1 ? windowNll / (ids.length - 1) : 0 });
    nllSum += windowNll;
    nllTerms += ids.length - 1;
    row0 += ids.length;
  }
  fs.writeFileSync(outPath, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  const result = {
    n_tokens: total,
    n_vocab: nVocab,
    mean_nll: nllTerms > 0 ? nllSum / nllTerms : 0,
    argmax,
    windows: perWindow,
  };
  await context.dispose();
  await model.dispose();
  if (!keepLlama) await llama.dispose();
  return result;
}

const [mode, ...args] = process.argv.slice(2);
try {
  if (mode === "tokenize" && args.length === 2) await tokenize(args[0], args[1]);
  else if (mode === "eval" && args.length === 3) await evaluate(args[0], args[1], args[2]);
  else if (mode === "eval-many" && args.length >= 3) {
    sharedLlama = await getQuietLlama();
    await evaluateMany(args[0], args[1], args.slice(2));
  }
  else usage();
} catch (error) {
  fail(error?.stack ?? String(error));
}
