// How every script here opens llama.cpp (node-llama-cpp's prebuilt CPU library): CPU only, prebuilt binaries,
// no builds or downloads, a fixed thread count, and llama.cpp's log lines on stderr — errors only, unless
// SLMOPT_HARNESS_VERBOSE=1 — so that stdout carries only the script's own JSON.
import process from "node:process";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

export const verbose = process.env.SLMOPT_HARNESS_VERBOSE === "1";
// SLMOPT_HARNESS_THREADS, default 2.
export const harnessThreads = Number.parseInt(process.env.SLMOPT_HARNESS_THREADS ?? "2", 10);

export function getQuietLlama(maxThreads = harnessThreads) {
  return getLlama({
    build: "never",
    gpu: false,
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    maxThreads,
    logLevel: verbose ? LlamaLogLevel.debug : LlamaLogLevel.error,
    logger: (level, message) => {
      if (verbose || level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(message);
    },
  });
}
