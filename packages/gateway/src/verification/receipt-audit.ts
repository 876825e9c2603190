/**
 * Receipt audits. After the fact, the settled consumer requests whose receipt the settler refused
 * are judged (`auditConsumerReceipts`, each seen once): a receipt not signed by the node that
 * served, or one claiming more completion tokens than the gateway relayed, is objective fraud.
 * During a challenge, the receipt of the node's answer is judged the same way
 * (`challengeReceiptFraud`). Expired or malformed receipts are the settler's business only.
 */
import { isGbtError, recoverSignerNative, verifyObject } from "@gbt/protocol";
import type { PoolInstance } from "../pool/pool-instance.js";
import type { Finding } from "./challenge-result.js";
import type { RefusedReceipt } from "./evidence-store.js";
import type { VerificationPorts } from "./verification.js";
import type { Verifier } from "./verifier.js";

/** Verification failures that prove a receipt was not signed by the node it names. */
const SIGNATURE_FAILURES: readonly string[] = [
  "SIGNATURE_INVALID",
  "UNKNOWN_SIGNER",
  "SIGNER_MISMATCH",
  "PAYLOAD_HASH_MISMATCH",
];

type ReceiptPorts = Pick<VerificationPorts, "chainId" | "skewSeconds" | "gateway">;

export async function auditConsumerReceipts(verifier: Verifier): Promise<string[]> {
  verifier.assertOpen();
  const ids: string[] = [];
  for (const refused of verifier.store.takeRefusedReceipts(verifier.ports.usage)) {
    const finding = await judgeConsumerReceipt(verifier.ports, refused);
    if (finding === null) continue;
    verifier.assertOpen();
    // The ledger keeps addresses lower-case; evidence names the node as it signs (checksummed).
    const node = verifier.ports.pool.get(refused.node.toLowerCase())?.nodeAddress ?? refused.node;
    const record = verifier.store.addEvidence({
      instanceId: refused.node.toLowerCase(),
      node,
      kind: finding.kind,
      summary: finding.summary,
      details: { requestId: refused.requestId, source: "consumer traffic", ...finding.details },
    });
    verifier.views.forget(record.instanceId);
    verifier.ports.logger.warn(
      { node, evidence: record.id, kind: record.kind },
      "verification evidence recorded",
    );
    ids.push(record.id);
  }
  return ids;
}

async function judgeConsumerReceipt(ports: ReceiptPorts, refused: RefusedReceipt): Promise<Finding | null> {
  let value: unknown;
  try {
    value = JSON.parse(refused.receiptJson);
  } catch {
    return null;
  }
  const claimed = (value as { message?: { completionTokens?: unknown; issuedAt?: unknown } } | null)?.message;
  if (refused.status === "mismatch") {
    if (
      typeof claimed?.completionTokens !== "number" ||
      claimed.completionTokens <= refused.billedCompletionTokens
    )
      return null;
    return {
      kind: "receipt_not_delivered",
      summary: `Signed a receipt for ${claimed.completionTokens} completion tokens of request ${refused.requestId}; the gateway relayed ${refused.billedCompletionTokens}.`,
      details: {
        claimedCompletionTokens: claimed.completionTokens,
        deliveredCompletionTokens: refused.billedCompletionTokens,
        receipt: value,
      },
    };
  }
  // Only the signature matters here: check it as of the receipt's own time, so that a late scan
  // (or an expired receipt) never reads as forgery.
  const issuedAt = typeof claimed?.issuedAt === "number" ? claimed.issuedAt * 1000 : Date.now();
  try {
    await verifyObject(value, {
      recoverSigner: recoverSignerNative,
      kind: "UsageReceipt",
      chainId: ports.chainId,
      allowedSigners: [refused.node as `0x${string}`],
      skewSeconds: ports.skewSeconds,
      now: () => issuedAt,
    });
    return null;
  } catch (error) {
    if (!isGbtError(error) || !SIGNATURE_FAILURES.includes(error.code)) return null;
    return {
      kind: "signature_mismatch",
      summary: `Its usage receipt for request ${refused.requestId} is not signed by its own key (${error.code}).`,
      details: { check: error.code, receipt: value },
    };
  }
}

export async function challengeReceiptFraud(
  ports: ReceiptPorts,
  instance: PoolInstance,
  answer: { receipt: string | null; completionTokens: number | null; requestId: string },
  maxTokens: number,
): Promise<Finding | null> {
  if (answer.receipt === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(answer.receipt);
  } catch {
    return null;
  }
  try {
    const receipt = await verifyObject(value, {
      recoverSigner: recoverSignerNative,
      kind: "UsageReceipt",
      chainId: ports.chainId,
      audience: ports.gateway,
      allowedSigners: [instance.nodeAddress as `0x${string}`],
      skewSeconds: ports.skewSeconds,
    });
    const claimed = receipt.message.completionTokens;
    const delivered = answer.completionTokens;
    if (claimed > maxTokens || (delivered !== null && claimed > delivered)) {
      return {
        kind: "receipt_not_delivered",
        summary: `Signed a receipt for ${claimed} completion tokens but delivered ${delivered ?? "?"} (max_tokens ${maxTokens}).`,
        details: { receipt: value, claimedTokens: claimed, deliveredTokens: delivered },
      };
    }
    return null;
  } catch (error) {
    if (isGbtError(error) && SIGNATURE_FAILURES.includes(error.code)) {
      return {
        kind: "signature_mismatch",
        summary: `Its usage receipt is not signed by its own key (${error.code}).`,
        details: { receipt: value, check: error.code },
      };
    }
    return null;
  }
}
