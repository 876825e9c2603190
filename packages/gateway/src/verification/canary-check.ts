/**
 * Canaries: prompts whose greedy, seeded answer the gateway knows for a model (and, with a
 * digest, for one build of it), sent to a node as ordinary traffic. The known answer passes; any
 * other answer fails (`canary_mismatch`, or `model_digest_mismatch`, objective fraud, when the
 * node claims the canary's digest); a receipt for the answer that is not the node's own or claims
 * undelivered tokens is fraud too. No answer is an error, which counts for nothing.
 */
import type { InstanceLink, PoolInstance } from "../pool/pool-instance.js";
import { askNode, challengeRequestId } from "./challenge-client.js";
import { type ChallengeResult, resultOf, sha256Hex, skipped } from "./challenge-result.js";
import { challengeReceiptFraud } from "./receipt-audit.js";
import type { Canary, VerificationConfig } from "./verification-config.js";
import type { Verifier } from "./verifier.js";

/** The canaries whose answer is known for what this node claims to serve. */
export function canariesFor(
  config: VerificationConfig,
  instance: PoolInstance,
  link: InstanceLink,
): Canary[] {
  return config.canaries.filter((canary) => {
    if (!instance.models.includes(canary.model)) return false;
    if (canary.digest === undefined) return true;
    return link.models.find((m) => m.id === canary.model)?.digest === canary.digest;
  });
}

export async function runCanary(
  verifier: Verifier,
  instance: PoolInstance,
  link: InstanceLink,
): Promise<ChallengeResult> {
  const canaries = canariesFor(verifier.config, instance, link);
  if (canaries.length === 0) {
    return skipped("canary", "no canary is known for the models (and digests) this node claims");
  }
  const canary = canaries[Math.floor(verifier.random() * canaries.length)] as Canary;
  const answer = await askNode(link, canaryBody(canary), {
    timeoutMs: verifier.config.challengeTimeoutMs,
    requestId: challengeRequestId("canary"),
  });
  const details: Record<string, unknown> = {
    model: canary.model,
    digest: canary.digest ?? null,
    seed: canary.seed,
    requestId: answer.requestId,
  };
  if (!answer.ok) {
    const record = verifier.record(instance, "canary", "error", { ...details, reason: answer.reason });
    return resultOf("canary", record, `no verdict: ${answer.reason}`);
  }
  const fraud = await challengeReceiptFraud(verifier.ports, instance, answer, canary.maxTokens);
  if (fraud !== null) {
    const record = verifier.record(instance, "canary", "fail", { ...details, ...fraud.details }, fraud);
    return resultOf("canary", record, fraud.summary);
  }
  if (answer.content === canary.expected) {
    return resultOf("canary", verifier.record(instance, "canary", "pass", details), "the answer matches");
  }
  const mismatch = {
    ...details,
    expectedSha256: sha256Hex(canary.expected),
    answeredSha256: sha256Hex(answer.content),
    answeredPreview: answer.content.slice(0, 200),
  };
  const record = verifier.record(
    instance,
    "canary",
    "fail",
    mismatch,
    canary.digest !== undefined
      ? {
          kind: "model_digest_mismatch",
          summary: `Claims ${canary.model} with digest ${canary.digest}, but its greedy seeded answer differs from that model's.`,
        }
      : {
          kind: "canary_mismatch",
          summary: `Its greedy seeded answer for ${canary.model} differs from the known one.`,
        },
  );
  return resultOf("canary", record, "the answer differs from the known one");
}

function canaryBody(canary: Canary): Record<string, unknown> {
  return {
    model: canary.model,
    messages: [{ role: "user", content: canary.prompt }],
    max_tokens: canary.maxTokens,
    temperature: 0,
    seed: canary.seed,
  };
}
