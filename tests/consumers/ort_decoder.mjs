// The KV-cache decoder loop over an ONNX Runtime session with slmopt's export interface (io/onnx_export.h),
// shared by ort_harness.mjs (accuracy checks) and tests/bench/ort_bench.mjs (latency).
import * as ort from 'onnxruntime-node';

export class Decoder {
  constructor(session) {
    this.session = session;
    this.pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    this.meta = new Map();
    for (const m of session.inputMetadata ?? []) this.meta.set(m.name, m);
    this.needsPositions = session.inputNames.includes('position_ids');
    this.needsMask = session.inputNames.includes('attention_mask');
  }

  emptyPast() {
    const past = {};
    for (const name of this.pastNames) {
      const shape = this.meta.get(name)?.shape;
      if (!shape || typeof shape[1] !== 'number' || typeof shape[3] !== 'number')
        throw new Error(`cannot read the KV head count / head size of ${name} from the model`);
      past[name] = new ort.Tensor('float32', new Float32Array(0), [1, shape[1], 0, shape[3]]);
    }
    return past;
  }

  // Runs `ids` at positions past..past+n-1 on top of `past`; returns {logits: Float32Array [n, V], vocab, past}.
  async run(ids, past, pastLength) {
    const n = ids.length;
    const feeds = {input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n])};
    if (this.needsMask)
      feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(pastLength + n).fill(1n), [1, pastLength + n]);
    if (this.needsPositions) {
      const pos = new BigInt64Array(n);
      for (let i = 0; i < n; ++i) pos[i] = BigInt(pastLength + i);
      feeds.position_ids = new ort.Tensor('int64', pos, [1, n]);
    }
    Object.assign(feeds, past);
    const out = await this.session.run(feeds);
    const next = {};
    for (const name of this.pastNames) next[name] = out[name.replace('past_key_values.', 'present.')];
    const logits = out.logits;
    const vocab = logits.dims[logits.dims.length - 1];
    return {logits: logits.data, vocab, past: next};
  }
}

export function argmaxRow(logits, row, vocab) {
  let best = 0;
  for (let j = 1; j < vocab; ++j) if (logits[row * vocab + j] > logits[row * vocab + best]) best = j;
  return best;
}

export {ort};
