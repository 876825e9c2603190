/**
 * One or a few human lines for a job's outcome, by type: what the admin needs to see in the
 * transcript (the full output stays in the JSON events).
 */
import type { JobOutcome } from "@gbt/protocol";
import { shortId } from "./facts.js";
import { printable } from "./proposal.js";

const num = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined;
const rec = (value: unknown): Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

/** Lines describing `outcome` of a job of `type`. */
export function summarizeOutcome(type: string, outcome: JobOutcome): string[] {
  const head = `${type} job ${shortId(outcome.jobId)} ${outcome.state}`;
  if (outcome.state !== "succeeded") {
    return [
      `${head}${outcome.code ? ` (${outcome.code})` : ""}: ${printable(outcome.message ?? "no message", 300)}`,
    ];
  }
  const output = rec(outcome.output);
  switch (type) {
    case "status.read":
      return [`${head}; the facts it reported follow`];
    case "service.restart":
      return [`${head}: the ${printable(output.service ?? "service")} restarted`];
    case "node.drain":
      return [`${head}: the node no longer takes new requests (in-flight ones finish)`];
    case "node.resume":
      return [`${head}: the node takes requests again`];
    case "model.pull":
      return [`${head}: ${printable(output.model ?? "the model")} is in the store`];
    case "model.remove":
      return [`${head}: ${printable(output.model ?? "the model")} removed`];
    case "model.switch": {
      const cost = rec(output.antiFlapping);
      return [
        `${head}: now serving ${printable(output.model ?? "the model")}`,
        ...(typeof cost.note === "string" ? [printable(cost.note, 300)] : []),
      ];
    }
    case "logs.tail": {
      const lines = Array.isArray(output.lines) ? output.lines.map((l) => printable(l, 200)) : [];
      return [`${head}: ${lines.length} line${lines.length === 1 ? "" : "s"}`, ...lines.slice(-20)];
    }
    case "benchmark.run":
      return [`${head}`, ...benchmarkLines(output)];
    case "config.set":
      return [`${head}: ${printable(output.key)} = ${printable(output.value)}`];
    default:
      return [`${head}${outcome.output === undefined ? "" : `: ${printable(outcome.output, 200)}`}`];
  }
}

/** Headline numbers of a benchmark output, whatever their nesting (record payload or summary). */
function benchmarkLines(output: Record<string, unknown>): string[] {
  const found: string[] = [];
  const visit = (value: unknown, path: string, depth: number) => {
    if (depth > 4 || found.length >= 4) return;
    const record = rec(value);
    for (const [key, child] of Object.entries(record)) {
      const name = path ? `${path}.${key}` : key;
      const n = num(child);
      if (n !== undefined && /tokPerSec|TokPerSec|ttft|Ttft|eligibleCapacity/.test(key)) {
        found.push(`${name}: ${Number.isInteger(n) ? n : n.toFixed(1)}`);
      } else if (typeof child === "object") visit(child, name, depth + 1);
    }
  };
  visit(output, "", 0);
  return found.length > 0 ? found : ["benchmark recorded (see the JSON output for the numbers)"];
}
