/**
 * Human renderings of benchmark records for the terminal: the result table, the comparison with
 * the previous record, the history list, and the metric definitions that `--help` shows. The JSON
 * record is the contract; these tables are for reading.
 */
import {
  benchmarkMetrics,
  headlineMetrics,
  type RecordComparison,
  type ServeLevel,
  type SignedBenchmarkRecord,
  type Summary,
  statisticsDefinition,
} from "@gbt/node";
import { renderTable } from "./format.js";

function fixed(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined ? "—" : value.toFixed(digits);
}

function signed(value: number | null, digits = 1, suffix = ""): string {
  if (value === null) return "—";
  return `${value >= 0 ? "+" : ""}${value.toFixed(digits)}${suffix}`;
}

/** Renders rows as a left-aligned first column and right-aligned others. */
/** A table whose first column is a label and the rest numbers (right-aligned), indented. */
function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i): "left" | "right" => (i === 0 ? "left" : "right"));
  return renderTable(header, rows, { align, indent: "  ", trimEnd: false });
}

function summaryRow(label: string, unit: string, summary: Summary, digits = 1): string[] {
  return [
    label,
    fixed(summary.mean, digits),
    fixed(summary.sd, digits),
    fixed(summary.p50, digits),
    fixed(summary.p90, digits),
    fixed(summary.p99, digits),
    unit,
  ];
}

function shortDigest(digest: string | null): string {
  if (digest === null) return "no digest";
  const [scheme, hex] = digest.includes(":") ? digest.split(":", 2) : ["", digest];
  return `${scheme ? `${scheme}:` : ""}${(hex ?? "").slice(0, 12)}…`;
}

function levelRow(level: ServeLevel): string[] {
  return [
    String(level.concurrency),
    String(level.requests),
    String(level.errors),
    fixed(level.systemTokPerSec),
    fixed(level.requestsPerSec, 2),
    signed(level.gainPct, 1, "%"),
    fixed(level.ttftMs.p50),
    fixed(level.ttftMs.p99),
    fixed(level.tpotMs.p50, 2),
    fixed(level.itlMs.p99, 2),
    fixed(level.minStreamDecodeTokPerSec),
    level.allStreamsAboveFloor ? "yes" : "no",
  ];
}

/** The readable summary of one signed record. */
export function renderBenchmarkRecord(signedRecord: SignedBenchmarkRecord): string {
  const record = signedRecord.payload;
  const results = record.results;
  const lines: string[] = [];
  lines.push(
    `gbt node benchmark (${record.mode}): ${record.model.id} (${shortDigest(record.model.digest)}) on ${record.backend.kind}${
      record.backend.version ? ` — ${record.backend.version}` : ""
    }`,
  );
  const p = record.parameters;
  lines.push(
    `  prompt ${p.promptTokensMeasured} tokens (asked ${p.promptTokens}, ${p.promptCalibration === "backend" ? "counted by the backend" : "estimated"}), ` +
      `generate ${p.genTokens}, temperature 0, seed ${p.seed}` +
      (results.mode === "micro" ? `, ${p.repetitions} repetitions after ${p.warmup} warm-up` : "") +
      `; token counts: ${record.tokenCounts.source === "usage" ? "backend usage" : "ESTIMATED"}`,
  );
  if (record.gpu) lines.push(`  ${gpuLine(record.gpu)}`);
  lines.push("");
  if (results.mode === "micro") {
    const s = results.summary;
    lines.push(
      table(
        ["metric", "mean", "sd", "p50", "p90", "p99", "unit"],
        [
          summaryRow("TTFT", "ms", s.ttftMs),
          summaryRow("TPOT", "ms", s.tpotMs, 3),
          summaryRow("ITL", "ms", s.itlMs, 3),
          summaryRow("e2e latency", "ms", s.e2eMs),
          summaryRow("prefill", "tok/s", s.prefillTokPerSec),
          summaryRow("decode", "tok/s", s.decodeTokPerSec),
          summaryRow("decode (backend's clock)", "tok/s", s.backendDecodeTokPerSec),
          summaryRow("harness cost", "ms/tok", s.harnessMsPerToken, 4),
        ],
      ),
    );
    lines.push("");
    lines.push(
      `  decode ${fixed(s.decodeTokPerSec.mean)} ± ${fixed(s.decodeTokPerSec.sd)} tok/s over ${results.repetitions.length} runs, variation (max − min) / mean ${fixed(results.decodeVariationPct, 2)}%`,
    );
  } else {
    lines.push(
      table(
        [
          "conc",
          "reqs",
          "err",
          "system tok/s",
          "req/s",
          "gain",
          "TTFT p50",
          "TTFT p99",
          "TPOT p50",
          "ITL p99",
          "min decode",
          "floor",
        ],
        results.levels.map(levelRow),
      ),
    );
    lines.push("");
    lines.push(
      `  stopped: ${results.stop.reason} — ${results.stop.detail}; best throughput at concurrency ${results.kneeConcurrency}`,
    );
  }
  const cross = results.crossCheck;
  lines.push(
    cross.source === null
      ? "  clock cross-check: the backend reported no timings"
      : `  clock cross-check vs ${cross.source}: decode ${signed(cross.decodeDiffPct, 2, "%")}, prefill ${signed(cross.prefillDiffPct, 2, "%")}`,
  );
  const v = record.verdicts;
  lines.push("");
  lines.push(
    `  verdict: ${v.meetsFloor ? "meets" : "DOES NOT meet"} the ${v.floorTokPerSec} tok/s per-stream floor; decode ${fixed(v.decodeTokPerSec)} tok/s; eligible capacity ${v.eligibleCapacity}${
      record.mode === "micro" ? " (micro measures one stream; --mode serve measures more)" : ""
    }`,
  );
  if (v.failUnder) {
    lines.push(
      `  --fail-under ${v.failUnder.thresholdTokPerSec} tok/s: ${v.failUnder.passed ? "passed" : "FAILED"}`,
    );
  }
  for (const warning of record.warnings) lines.push(`  warning: ${warning}`);
  const expires = new Date(signedRecord.message.expiresAt * 1000).toISOString().slice(0, 10);
  lines.push(
    `  record ${record.recordId}, signed by ${record.node} (chain ${signedRecord.domain.chainId}), valid until ${expires}`,
  );
  return lines.join("\n");
}

/** The deltas against the previous record. */
export function renderComparison(comparison: RecordComparison): string {
  const lines = [`compared with ${comparison.previousId} (${comparison.previousCreatedAt}):`];
  lines.push(
    table(
      ["metric", "previous", "now", "delta", "delta %", "unit"],
      comparison.rows
        .filter((row) => row.previous !== null || row.current !== null)
        .map((row) => [
          `${row.label} (${row.better} is better)`,
          fixed(row.previous),
          fixed(row.current),
          signed(row.delta),
          signed(row.deltaPct, 1, "%"),
          row.unit,
        ]),
    ),
  );
  for (const note of comparison.notes) lines.push(`  note: ${note}`);
  return lines.join("\n");
}

/** One line per stored record, newest first. */
export function renderHistory(records: readonly SignedBenchmarkRecord[]): string {
  if (records.length === 0) return "No benchmark records yet. Run `gbt node benchmark`.";
  return table(
    ["created", "mode", "model", "backend", "decode tok/s", "prefill tok/s", "capacity", "floor", "record"],
    records.map((signedRecord) => {
      const record = signedRecord.payload;
      const headline = headlineMetrics(record);
      return [
        record.createdAt.replace("T", " ").slice(0, 19),
        record.mode,
        record.model.id,
        record.backend.kind,
        fixed(headline.decodeTokPerSec),
        fixed(headline.prefillTokPerSec),
        String(record.verdicts.eligibleCapacity),
        record.verdicts.meetsFloor ? "meets" : "below",
        record.recordId,
      ];
    }),
  );
}

/** The metric definitions, for `--help`. */
export function renderMetricDefinitions(): string {
  const lines = benchmarkMetrics.map((metric) => `  ${metric.label} (${metric.unit}): ${metric.definition}`);
  return [...lines, `  Statistics: ${statisticsDefinition}`].join("\n");
}

/** One line on the accelerator a record used: device, VRAM, driver and the offload actually loaded. */
export function gpuLine(gpu: NonNullable<SignedBenchmarkRecord["payload"]["gpu"]>): string {
  const offload =
    gpu.gpuLayers !== null && gpu.totalLayers !== null
      ? `, ${gpu.gpuLayers}/${gpu.totalLayers} layers offloaded`
      : "";
  if (gpu.backend === "cpu") return `gpu: none — ${gpu.summary}`;
  return `gpu: ${gpu.backend} on ${gpu.devices.join(", ") || "unknown device"}${
    gpu.vramTotalMB !== null ? ` (${(gpu.vramTotalMB / 1024).toFixed(1)} GiB VRAM)` : ""
  }${gpu.driver ? `, driver ${gpu.driver}` : ""}${offload}`;
}
