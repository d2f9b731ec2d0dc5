#!/usr/bin/env node
// ONNX Runtime (npm onnxruntime-node, CPU) as a peer for shrink's tests and benchmarks.
//
//   node ort_run.js run MODEL OUT_DIR IN0.npy [IN1.npy ...]
//       runs the model, writes OUT_DIR/output_<i>.npy for each graph output
//   node ort_run.js bench MODEL BATCH THREADS RUNS
//       random float inputs (symbolic batch set to BATCH), prints JSON with the median ms
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const NPY_TYPES = { '<f4': 'float32', '<f8': 'float64', '<i8': 'int64', '<i4': 'int32', '|u1': 'uint8', '|i1': 'int8', '|b1': 'bool' };
const ARRAYS = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, uint8: Uint8Array, int8: Int8Array, bool: Uint8Array };

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)[1].match(/\d+/g) || []).map(Number);
  const type = NPY_TYPES[descr];
  if (!type) throw new Error(`${file}: unsupported dtype ${descr}`);
  const data = buf.subarray(start + headerLen);
  const copy = new Uint8Array(data.length);
  copy.set(data);
  const values = new ARRAYS[type](copy.buffer, 0, data.length / ARRAYS[type].BYTES_PER_ELEMENT);
  return new ort.Tensor(type, type === 'bool' ? Array.from(values, (v) => v !== 0) : values, shape);
}

function writeNpy(file, tensor) {
  const codes = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1', int8: '|i1', bool: '|b1' };
  const code = codes[tensor.type];
  if (!code) throw new Error(`cannot write ${tensor.type} as .npy`);
  const dims = tensor.dims.length === 1 ? `${tensor.dims[0]},` : tensor.dims.join(', ');
  let header = `{'descr': '${code}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.type === 'bool' ? Uint8Array.from(tensor.data, (v) => (v ? 1 : 0)) : tensor.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

async function run(model, outDir, inputs) {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const feeds = {};
  session.inputNames.forEach((name, i) => { feeds[name] = readNpy(inputs[i]); });
  const results = await session.run(feeds);
  session.outputNames.forEach((name, i) => writeNpy(path.join(outDir, `output_${i}.npy`), results[name]));
}

async function bench(model, batch, threads, runs) {
  const options = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' };
  // Session creation (load, optimise: constant folding decodes encoded initializers),
  // timed after a first creation has loaded the runtime itself; median of 5.
  let session = await ort.InferenceSession.create(model, options);
  const create = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    session = await ort.InferenceSession.create(model, options);
    create.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  create.sort((a, b) => a - b);
  const meta = session.inputMetadata || [];
  const feeds = {};
  session.inputNames.forEach((name, i) => {
    const m = meta[i] || {};
    const dims = (m.shape || []).map((d, j) => (typeof d === 'number' && d > 0 ? d : (j === 0 ? batch : 1)));
    const n = dims.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
    feeds[name] = new ort.Tensor('float32', data, dims);
  });
  for (let i = 0; i < 5; i++) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  console.log(JSON.stringify({ median_ms: ms[Math.floor(ms.length / 2)], min_ms: ms[0], create_ms: create[2], runs, batch, threads }));
}

(async () => {
  const [mode, ...args] = process.argv.slice(2);
  try {
    if (mode === 'run') await run(args[0], args[1], args.slice(2));
    else if (mode === 'bench') await bench(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
    else throw new Error('usage: ort_run.js run MODEL OUT_DIR IN.npy... | bench MODEL BATCH THREADS RUNS');
  } catch (e) {
    console.error(`ort_run: ${e.message}`);
    process.exit(1);
  }
})();
