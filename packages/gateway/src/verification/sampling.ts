/**
 * Redundant sampling: a share (`verification.sampleRate`) of real non-streamed, seeded requests is
 * replayed on a second node and the answers compared, after the consumer has its answer. Equal
 * answers pass both nodes; on disagreement a third node decides (the outvoted one fails,
 * `sample_outvoted`), else the canaries of both run. Unseeded or streamed requests say nothing
 * exact and are not sampled. The replays are challenge traffic: neither billed nor paid.
 */
import { z } from "zod";
import type { PoolInstance } from "../pool/pool-instance.js";
import type { ObservedCompletion } from "../proxy/admission.js";
import { canariesFor } from "./canary-check.js";
import { askNode, challengeRequestId } from "./challenge-client.js";
import { sha256Hex } from "./challenge-result.js";
import type { Verifier } from "./verifier.js";

export interface SampleComparison {
  requestId: string;
  model: string;
  /** The instances compared: the one that served the request first. */
  instances: [string, string];
  agree: boolean | null;
  /** Set when a third node broke a disagreement. */
  referee: string | null;
  /** The instance outvoted, when known. */
  outvoted: string | null;
  reason: string;
}

/** Comparisons kept in memory, newest last. */
const MAX_COMPARISONS = 1000;

const sampledRequest = z.looseObject({
  model: z.string().min(1).max(256),
  seed: z.number().int(),
  stream: z.literal(false).nullable().optional(),
});

/** Redundant sampling of one real request (already chosen by the sample rate). */
export async function sampleCompletion(
  verifier: Verifier,
  completion: ObservedCompletion,
): Promise<SampleComparison | null> {
  let body: z.infer<typeof sampledRequest>;
  try {
    const parsed = sampledRequest.safeParse(JSON.parse(completion.body.toString("utf8")));
    if (!parsed.success) return null; // unseeded or streamed: nothing to compare exactly
    body = parsed.data;
  } catch {
    return null;
  }
  const first = verifier.ports.pool.get(completion.instanceId);
  if (first === undefined) return null;
  const second = otherInstance(verifier, body.model, [completion.instanceId]);
  if (second === undefined) return null;
  const original = parseContent(completion.response);
  if (original === null) return null;
  return compareAnswers(verifier, completion.instanceId, second.id, body, {
    requestId: completion.requestId,
    content: original,
  });
}

function otherInstance(
  verifier: Verifier,
  model: string,
  exclude: readonly string[],
): PoolInstance | undefined {
  const candidates = verifier.ports.pool.active(model).filter((instance) => !exclude.includes(instance.id));
  return candidates[Math.floor(verifier.random() * candidates.length)];
}

export async function compareAnswers(
  verifier: Verifier,
  firstId: string,
  secondId: string,
  body: Record<string, unknown>,
  original: { requestId: string; content: string } | null,
): Promise<SampleComparison> {
  const a = verifier.instance(firstId);
  const b = verifier.instance(secondId);
  const model = String(body.model ?? "");
  const timeoutMs = verifier.config.challengeTimeoutMs;
  const first: { ok: true; content: string } | { ok: false; reason: string } =
    original !== null
      ? { ok: true, content: original.content }
      : await askNode(a.link, body, { timeoutMs, requestId: challengeRequestId("sample") });
  const second = await askNode(b.link, body, { timeoutMs, requestId: challengeRequestId("sample") });
  const comparison: SampleComparison = {
    requestId: original?.requestId ?? "admin",
    model,
    instances: [a.instance.id, b.instance.id],
    agree: null,
    referee: null,
    outvoted: null,
    reason: "",
  };
  const done = (reason: string) => {
    comparison.reason = reason;
    verifier.comparisons.push(comparison);
    if (verifier.comparisons.length > MAX_COMPARISONS) verifier.comparisons.shift();
    return comparison;
  };
  if (!first.ok || !second.ok) {
    return done(`no comparison: ${!first.ok ? first.reason : (second as { reason: string }).reason}`);
  }
  const details = { model, requestId: comparison.requestId, seed: body.seed ?? null };
  if (first.content === second.content) {
    comparison.agree = true;
    verifier.record(a.instance, "sample", "pass", { ...details, comparedWith: b.instance.id });
    verifier.record(b.instance, "sample", "pass", { ...details, comparedWith: a.instance.id });
    return done("the answers match");
  }
  comparison.agree = false;
  const referee = otherInstance(verifier, model, [a.instance.id, b.instance.id]);
  const third =
    referee === undefined
      ? null
      : await askNode(verifier.instance(referee.id).link, body, {
          timeoutMs,
          requestId: challengeRequestId("sample"),
        });
  if (
    referee !== undefined &&
    third?.ok === true &&
    (third.content === first.content) !== (third.content === second.content)
  ) {
    comparison.referee = referee.id;
    const [winner, loser] = third.content === first.content ? [a, b] : [b, a];
    comparison.outvoted = loser.instance.id;
    verifier.record(winner.instance, "sample", "pass", {
      ...details,
      comparedWith: loser.instance.id,
      referee: referee.id,
    });
    verifier.record(referee, "sample", "pass", { ...details, comparedWith: winner.instance.id });
    verifier.record(
      loser.instance,
      "sample",
      "fail",
      {
        ...details,
        comparedWith: winner.instance.id,
        referee: referee.id,
        answeredSha256: sha256Hex(third.content === first.content ? second.content : first.content),
      },
      {
        kind: "sample_outvoted",
        summary: `Its seeded answer for ${model} differs from two other nodes' (which agree).`,
      },
    );
    return done("outvoted by a third node");
  }
  // Two answers, no majority: the canaries of both decide, when any is known.
  for (const side of [a, b]) {
    if (canariesFor(verifier.config, side.instance, side.link).length > 0)
      await verifier.challenge(side.instance.id, ["canary"]);
  }
  return done("the answers differ; no third node agreed with either (canaries run on both)");
}

function parseContent(response: Buffer): string | null {
  try {
    const json = JSON.parse(response.toString("utf8")) as { choices?: { message?: { content?: unknown } }[] };
    const content = json.choices?.[0]?.message?.content;
    return typeof content === "string" ? content : null;
  } catch {
    return null;
  }
}
