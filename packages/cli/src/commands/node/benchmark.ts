import {
  belowThresholdError,
  DEFAULT_GEN_TOKENS,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_PROMPT_TOKENS,
  DEFAULT_REPETITIONS,
  DEFAULT_TTFT_P99_TARGET_MS,
  DEFAULT_WARMUP,
  FLOOR_TOK_PER_SEC,
  resolvePaths,
  runNodeBenchmark,
  type SignedBenchmarkRecord,
} from "@gbt/node";
import { ExitCode, GbtError, isGbtError } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";
import { gpuFlags, gpuOptions } from "../../gpu-flags.js";
import { createProgressReporter } from "../../progress-bar.js";
import { renderBenchmarkRecord, renderComparison, renderMetricDefinitions } from "../../render-benchmark.js";
import { passphraseFromFlags } from "../../terminal-input.js";

/** Parses --fail-under: a non-negative number of tokens per second. */
function parseTokPerSec(input: string | undefined): number | undefined {
  if (input === undefined) return undefined;
  const value = Number(input);
  if (input.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new GbtError(
      "USAGE",
      `--fail-under expects a non-negative number of tokens per second, got ${JSON.stringify(input)}.`,
      {
        hint: "For example --fail-under 20.",
      },
    );
  }
  return value;
}

export default class NodeBenchmark extends GbtCommand {
  static override summary = "Measure this node's inference speed and store a signed benchmark record.";

  static override description =
    `Two modes. micro (default, in the spirit of llama-bench) runs one stream straight on the backend: a fixed synthetic prompt of --prompt-tokens tokens (counted by the backend's own tokenizer and chat template), --gen-tokens generated tokens at temperature 0 with a fixed seed, --warmup runs that are not measured, then --repetitions measured runs, reported as mean ± sd. serve sweeps concurrency 1, 2, 4, … through the node's own OpenAI-compatible server (or --url), streaming with usage, and stops at the knee: system throughput gains less than 5%, TTFT p99 goes over --ttft-p99-target-ms, the backend's capacity is reached, or a request fails.

The record (hardware, backend and version, model digest, parameters, results, verdicts) is signed by the node key as a BenchmarkRecord, valid 30 days, and stored in node.db (see \`gbt node benchmark history\`). Token counts are the backend's own; an estimate is used, and flagged, only when it reports none. The client clock is cross-checked against the backend's own durations (llama.cpp timings, Ollama eval_duration) and the difference is reported.

Verdicts: a stream meets the ${FLOOR_TOK_PER_SEC} tok/s per-stream floor or not; the eligible capacity is the highest concurrency at which every stream stays above it (micro measures one stream: 0 or 1). --fail-under stores and prints the record, then exits 10 when the decode rate is below the threshold.

Progress goes to stderr; stdout carries the table, or with --json the signed record alone. Ctrl-C stops cleanly (exit 130) and stores nothing.

Metrics:
${renderMetricDefinitions()}`;

  static override examples = [
    { description: "Micro benchmark with the defaults", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Longer prompt, more repetitions, compared with the previous record",
      command:
        "<%= config.bin %> <%= command.id %> --prompt-tokens 512 --gen-tokens 128 --repetitions 10 --compare",
    },
    {
      description: "Concurrency sweep through the node's own server",
      command:
        "<%= config.bin %> <%= command.id %> --mode serve --max-concurrency 16 --ttft-p99-target-ms 2000",
    },
    {
      description: "CI: fail (exit 10) under 20 tok/s, keep the signed record",
      command: "<%= config.bin %> <%= command.id %> --json --fail-under 20 > benchmark.json",
    },
    {
      description: "The headline numbers, for scripts",
      command:
        "<%= config.bin %> <%= command.id %> --json | jq '.payload.verdicts | {decodeTokPerSec, eligibleCapacity}'",
    },
  ];

  static override flags = {
    mode: Flags.string({
      description: "micro: one stream on the backend; serve: concurrency sweep over HTTP.",
      options: ["micro", "serve"],
      default: "micro",
    }),
    "prompt-tokens": Flags.integer({
      description: "Prompt size in tokens (the synthetic prompt, chat template included).",
      min: 1,
      default: DEFAULT_PROMPT_TOKENS,
    }),
    "gen-tokens": Flags.integer({
      description: "Tokens generated per request.",
      min: 2,
      default: DEFAULT_GEN_TOKENS,
    }),
    repetitions: Flags.integer({
      description: "Measured runs (micro).",
      min: 1,
      default: DEFAULT_REPETITIONS,
    }),
    warmup: Flags.integer({
      description: "Unmeasured warm-up runs (micro).",
      min: 0,
      default: DEFAULT_WARMUP,
    }),
    "max-concurrency": Flags.integer({
      description: "Highest concurrency the sweep tries (serve); it stops earlier at the knee.",
      min: 1,
      default: DEFAULT_MAX_CONCURRENCY,
    }),
    "ttft-p99-target-ms": Flags.integer({
      description: "The sweep stops once TTFT p99 is over this (serve).",
      min: 1,
      default: DEFAULT_TTFT_P99_TARGET_MS,
    }),
    "fail-under": Flags.string({
      helpValue: "TOK_PER_SEC",
      description: "Exit 10 (after storing and printing the record) when decode tok/s is below this.",
    }),
    model: Flags.string({
      description:
        "Model: a GGUF path or id (embedded), an Ollama tag or a server model id; default the configured one.",
    }),
    threads: Flags.integer({ description: "llama.cpp threads (embedded backend).", min: 1, max: 256 }),
    ...gpuFlags,
    url: Flags.string({
      description: "Serve mode: benchmark this OpenAI-compatible server instead of the node's own.",
    }),
    compare: Flags.boolean({ description: "Show deltas against the previous record of the same mode." }),
    "passphrase-file": Flags.string({
      description: "File holding the node key's passphrase (else GBT_PASSPHRASE).",
    }),
  };

  async run(): Promise<SignedBenchmarkRecord> {
    const { flags } = await this.parse(NodeBenchmark);
    const failUnder = parseTokPerSec(flags["fail-under"]);
    const passphrase = await passphraseFromFlags({ passphraseFile: flags["passphrase-file"] });
    const controller = new AbortController();
    // A second Ctrl-C leaves at once. `on`, not `once`: signal-exit (loaded by dependencies) re-raises
    // the signal, killing the process, when it finds itself the only listener left.
    const onSignal = () => {
      if (controller.signal.aborted) process.exit(ExitCode.interrupted);
      controller.abort(new GbtError("INTERRUPTED", "Interrupted."));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const showProgress = !this.jsonEnabled() || Boolean(process.stderr.isTTY);
    const progress = createProgressReporter(process.stderr);
    try {
      const result = await runNodeBenchmark({
        paths: resolvePaths(),
        mode: flags.mode as "micro" | "serve",
        promptTokens: flags["prompt-tokens"],
        genTokens: flags["gen-tokens"],
        repetitions: flags.repetitions,
        warmup: flags.warmup,
        maxConcurrency: flags["max-concurrency"],
        ttftP99TargetMs: flags["ttft-p99-target-ms"],
        ...(failUnder !== undefined ? { failUnder } : {}),
        ...(flags.model !== undefined ? { model: flags.model } : {}),
        ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
        ...gpuOptions(flags),
        onWarning: (message) => this.warn(message),
        ...(flags.url !== undefined ? { url: flags.url } : {}),
        ...(passphrase !== undefined ? { passphrase } : {}),
        compare: flags.compare,
        signal: controller.signal,
        ...(showProgress ? { onProgress: (p) => progress.update(p) } : {}),
      });
      progress.stop();
      this.out(renderBenchmarkRecord(result.signed));
      if (flags.compare) {
        this.out(
          result.comparison
            ? `\n${renderComparison(result.comparison)}`
            : "\nNo previous record of this mode to compare with.",
        );
      }
      if (result.belowThreshold) {
        if (this.jsonEnabled()) this.logJson(result.signed);
        throw belowThresholdError(result);
      }
      return result.signed;
    } finally {
      progress.stop();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  }

  /** With --json and --fail-under, stdout already holds the record: the threshold error goes to stderr. */
  protected override async catch(error: Error & { exitCode?: number }): Promise<void> {
    if (isGbtError(error, "BELOW_THRESHOLD") && this.jsonEnabled()) {
      process.stderr.write(`Error: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    return super.catch(error);
  }
}
