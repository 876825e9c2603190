/**
 * Settles served requests off the request path. Completed requests are queued and settled in
 * batches (`batchMs` after the first, or at once when `batchSize` are waiting), so that even at low
 * concurrency the ledger is written many requests per SQLite transaction: each one's usage receipt
 * is verified (signed by the node that served it, for this gateway and chain, for this request and
 * model, in its time window), its token counts are checked against what the gateway relayed, the
 * gateway countersigns the receipt's digest, and the settlement queue writes one double-entry
 * transaction per request.
 *
 * What is billed: with a valid receipt, the receipt's tokens; otherwise the gateway's own view
 * (the usage in a whole response, read in its route's layout: chat and completions `usage`, the
 * Responses API's `input_tokens`/`output_tokens`, embeddings' input tokens only; the content
 * chunks relayed on a stream) and the provider's share goes to `suspense` instead of the node. A stream that failed or was cancelled bills only the
 * completion tokens delivered. Completion tokens never exceed the request's max_tokens, and prompt
 * tokens never exceed the body's size, so a debit never exceeds the credit hold.
 *
 * Nothing served is lost: `submit` writes the request's facts to the settlement journal (the
 * write-ahead, settlement-journal.ts) before it returns, as the response ends; `replay` settles
 * what the journal still holds at start, before the gateway serves.
 */
import {
  digestOf,
  GbtError,
  isGbtError,
  recoverSignerNative,
  type SignedObject,
  verifyObject,
} from "@gbt/protocol";
import type { Logger } from "pino";
import { hexToBytes, type PrivateKeyAccount } from "viem";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayMetrics } from "../gateway-metrics.js";
import type { ConsumerRoute } from "../pool/capabilities.js";
import type { InstancePool } from "../pool/instance-pool.js";
import type { PoolInstance } from "../pool/pool-instance.js";
import type { CreditHold } from "./credit-holds.js";
import type { ReceiptStatus, UsageSettlement } from "./ledger.js";
import { costMicro, type ModelPrice, providerCreditMicro } from "./pricing.js";
import type { PendingSettlement, SettlementJournal } from "./settlement-journal.js";
import type { SettlementQueue } from "./settlement-queue.js";

/** A request the proxy finished with, handed over for settlement. */
export interface CompletedRequest {
  requestId: string;
  /** The consumer route it came by (how its whole body states its usage). */
  route: ConsumerRoute;
  model: string;
  stream: boolean;
  instance: PoolInstance;
  /** complete: served in full; failed: the node failed mid-stream; cancelled: the consumer left; rejected: the node refused it (4xx). */
  state: "complete" | "failed" | "cancelled" | "rejected";
  /** Content chunks relayed on a stream (the gateway's own count). */
  relayedCompletionTokens: number;
  generationMs: number;
  durationMs: number;
  /** The node's signed receipt as JSON text, when it sent one. */
  receipt: string | null;
  /** A whole response's body, for its usage. */
  wholeBody: Buffer | null;
  /**
   * Sends a whole response to the consumer: the proxy calls it once the request is handed over
   * (journalled), so that no crash can lose a request the consumer received in full.
   */
  deliver?: () => void;
  maxTokens: number;
  /** Upper bound of the prompt's tokens (the body's bytes). */
  promptBound: number;
  accountId: string;
  keyId: string;
  price: ModelPrice;
}

export interface ReceiptSettlerOptions {
  config: GatewayConfig;
  account: PrivateKeyAccount;
  /** Countersigns a receipt digest (default: the account, in JS). */
  signDigest?: (digest: Uint8Array) => `0x${string}` | Promise<`0x${string}`>;
  /** The multipliers' source: ramp-up, switch penalty and how many instances serve a model. */
  pool: Pick<InstancePool, "rampFactor" | "switchPenalty" | "activeCount">;
  queue: SettlementQueue;
  /** The write-ahead of served requests (absent: settlements wait in memory only). */
  journal?: SettlementJournal;
  metrics: GatewayMetrics;
  logger: Logger;
  now?: () => number;
  /** The payout multiplier an instance's reputation earns, in [0, 1] (default: 1 for all). */
  payoutFactor?: (instanceId: string) => number;
  /** How long a finished request may wait for others to settle with it, ms (default 20). */
  batchMs?: number;
  /** Settle at once when this many are waiting (default 256). */
  batchSize?: number;
  /** Settlements written per SQLite transaction, with the event loop's turn between two (default 64). */
  sliceSize?: number;
}

/** The longest the settler works before letting the event loop serve requests, ms. */
const SLICE_MS = 2;

/** A stream's receipt may claim a few more tokens than chunks relayed (pieces that decode to no text). */
export function completionTolerance(relayed: number): number {
  return Math.ceil(relayed * 0.1) + 2;
}

export class ReceiptSettler {
  readonly #options: ReceiptSettlerOptions;
  readonly #batchMs: number;
  readonly #batchSize: number;
  readonly #sliceSize: number;
  #queue: { pending: PendingSettlement; hold: CreditHold | undefined }[] = [];
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ReceiptSettlerOptions) {
    this.#options = options;
    this.#batchMs = options.batchMs ?? 20;
    this.#batchSize = options.batchSize ?? 256;
    this.#sliceSize = options.sliceSize ?? 64;
  }

  /**
   * Queues a finished request with the consumer's credit hold, which stays until the debit is
   * written; its facts are in the journal when this returns.
   */
  submit(completed: CompletedRequest, hold: CreditHold): void {
    if (completed.state === "rejected") {
      hold.release();
      return;
    }
    const pending = this.pendingOf(completed);
    try {
      this.#options.journal?.record(pending);
    } catch (error) {
      // The journal is unwritable (disk full…): the request is still billed, from memory.
      this.#options.metrics.settlementErrors.inc();
      this.#options.logger.error(
        { requestId: completed.requestId, err: error },
        "could not journal a served request",
      );
    }
    this.#push(pending, hold);
  }

  /**
   * Settles what the journal holds (requests served before a crash), as a start does before it
   * serves; a request the ledger already holds is dropped, not billed twice. Returns how many
   * were found.
   */
  async replay(): Promise<number> {
    const pending = this.#options.journal?.recover() ?? [];
    for (const row of pending) this.#push(row, undefined);
    await this.idle();
    return pending.length;
  }

  #push(pending: PendingSettlement, hold: CreditHold | undefined): void {
    this.#queue.push({ pending, hold });
    if (this.#running !== null) return; // the running drain takes it
    // One SQLite transaction per batch rather than per request, even at low concurrency.
    if (this.#queue.length >= this.#batchSize) this.#start();
    else this.#timer ??= setTimeout(() => this.#start(), this.#batchMs);
  }

  /** Resolves once everything submitted so far is settled and written. */
  async idle(): Promise<void> {
    if (this.#timer !== undefined) this.#start();
    while (this.#running !== null) await this.#running;
    this.#options.queue.flushSync();
  }

  #start(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running ??= Promise.resolve().then(() => this.#drain());
  }

  async #drain(): Promise<void> {
    try {
      let sliceStart = performance.now();
      let sliceCount = 0;
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        for (const { pending, hold } of batch) {
          // The request path shares this thread: a signature check takes milliseconds and a
          // settlement's SQLite write ~0.1 ms, so the work goes in slices with the event loop's
          // turn between two (the settlement queue writes each slice in its own setImmediate).
          if (sliceCount >= this.#sliceSize || performance.now() - sliceStart > SLICE_MS) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            sliceStart = performance.now();
            sliceCount = 0;
          }
          sliceCount += 1;
          try {
            this.#options.queue.enqueue(await this.settlementOf(pending), hold);
          } catch (error) {
            hold?.release();
            this.#options.metrics.settlementErrors.inc();
            this.#options.logger.error(
              { requestId: pending.requestId, err: error },
              "could not settle a served request",
            );
            try {
              this.#options.journal?.deadLetter(pending.requestId, 1, error);
            } catch (journalError) {
              this.#options.logger.error(
                { requestId: pending.requestId, err: journalError },
                "journal write failed",
              );
            }
          }
        }
      }
    } finally {
      this.#running = null;
    }
  }

  /**
   * The facts of a finished request as they stand when the response ends, everything the
   * settlement needs but the receipt's check: the gateway's view of the tokens and the
   * multipliers of this moment. Synchronous and cheap: it runs on the request path.
   */
  pendingOf(completed: CompletedRequest): PendingSettlement {
    const { config, pool } = this.#options;
    const view = gatewayView(completed);
    const instance = completed.instance;
    const now = (this.#options.now ?? Date.now)();
    // Counting stops at minInstances: only "fewer than that" matters.
    const active = pool.activeCount(completed.model, config.bounty.minInstances, now);
    return {
      requestId: completed.requestId,
      accountId: completed.accountId,
      keyId: completed.keyId,
      node: instance.nodeAddress,
      model: completed.model,
      stream: completed.stream,
      state: completed.state === "rejected" ? "failed" : completed.state,
      relayedCompletionTokens: completed.relayedCompletionTokens,
      viewPromptTokens: view.promptTokens,
      viewCompletionTokens: view.completionTokens,
      receipt: completed.receipt,
      maxTokens: completed.maxTokens,
      promptBound: completed.promptBound,
      price: completed.price,
      multipliers: {
        providerShare: config.providerShare,
        rampFactor: pool.rampFactor(instance, now),
        switchPenalty: pool.switchPenalty(instance, now),
        bounty: active < config.bounty.minInstances ? config.bounty.multiplier : 1,
        reputation: this.#options.payoutFactor?.(instance.id) ?? 1,
      },
      servedAt: now,
    };
  }

  /** Works out what a finished request costs and who earns it. */
  async settlementOf(completed: PendingSettlement): Promise<UsageSettlement> {
    const { metrics } = this.#options;
    const view = {
      promptTokens: completed.viewPromptTokens,
      completionTokens: completed.viewCompletionTokens,
    };
    let status: ReceiptStatus = "missing";
    let promptTokens = view.promptTokens;
    let completionTokens = view.completionTokens;
    let receiptJson: string | null = null;
    let gatewaySignature: string | null = null;
    if (completed.receipt !== null && completed.state === "complete") {
      receiptJson = completed.receipt;
      try {
        const receipt = await this.verifyReceipt(completed, receiptJson);
        const claimed = receipt.message;
        const agrees = completed.stream
          ? claimed.completionTokens <=
              completed.relayedCompletionTokens + completionTolerance(completed.relayedCompletionTokens) &&
            claimed.completionTokens + completionTolerance(claimed.completionTokens) >=
              completed.relayedCompletionTokens &&
            (view.promptTokens === null || claimed.promptTokens === view.promptTokens)
          : claimed.completionTokens === view.completionTokens && claimed.promptTokens === view.promptTokens;
        if (agrees) {
          status = "valid";
          promptTokens = claimed.promptTokens;
          completionTokens = claimed.completionTokens;
          const digest = digestOf(receipt);
          gatewaySignature = this.#options.signDigest
            ? await this.#options.signDigest(hexToBytes(digest))
            : await this.#options.account.sign({ hash: digest });
        } else {
          status = "mismatch";
          this.#options.logger.warn(
            {
              requestId: completed.requestId,
              node: completed.node,
              claimed: { prompt: claimed.promptTokens, completion: claimed.completionTokens },
              relayed: {
                prompt: view.promptTokens,
                completion: completed.stream ? completed.relayedCompletionTokens : view.completionTokens,
              },
            },
            "receipt tokens disagree with what the gateway relayed",
          );
        }
      } catch (error) {
        status = "invalid";
        this.#options.logger.warn(
          {
            requestId: completed.requestId,
            node: completed.node,
            reason: isGbtError(error) ? `${error.code}: ${error.message}` : String(error),
          },
          "invalid usage receipt",
        );
      }
    }
    metrics.receipts.inc({ status });
    const prompt = Math.min(promptTokens ?? 0, completed.promptBound);
    const completion = Math.min(completionTokens, completed.maxTokens);
    const debitMicro = costMicro(completed.price, prompt, completion);
    const multipliers = completed.multipliers;
    metrics.tokens.inc({ type: "prompt" }, prompt);
    metrics.tokens.inc({ type: "completion" }, completion);
    return {
      requestId: completed.requestId,
      accountId: completed.accountId,
      keyId: completed.keyId,
      node: completed.node,
      model: completed.model,
      promptTokens: prompt,
      completionTokens: completion,
      debitMicro,
      providerCreditMicro: providerCreditMicro(debitMicro, multipliers),
      receiptStatus: status,
      receiptJson,
      gatewaySignature,
      multipliers,
    };
  }

  /**
   * Verifies a receipt for this request: signature, audience, chain, window (as of when the
   * request was served, so that a replay after a restart judges it the same), request id and model.
   */
  async verifyReceipt(completed: PendingSettlement, json: string): Promise<SignedObject<"UsageReceipt">> {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw new GbtError("INVALID_OBJECT", "The receipt is not valid JSON.");
    }
    const receipt = await verifyObject(value, {
      recoverSigner: recoverSignerNative,
      kind: "UsageReceipt",
      chainId: this.#options.config.chainId,
      audience: this.#options.account.address,
      allowedSigners: [completed.node as `0x${string}`],
      skewSeconds: this.#options.config.skewSeconds,
      now: () => completed.servedAt,
    });
    if (receipt.message.requestId !== completed.requestId || receipt.message.model !== completed.model) {
      throw new GbtError("INVALID_OBJECT", "The receipt is for another request or model.", {
        details: { requestId: receipt.message.requestId, model: receipt.message.model },
      });
    }
    return receipt;
  }
}

/** Tokens as the gateway saw them: a whole response's usage, or the chunks relayed on a stream. */
function gatewayView(completed: CompletedRequest): { promptTokens: number | null; completionTokens: number } {
  if (!completed.stream && completed.wholeBody !== null) {
    try {
      const body = JSON.parse(completed.wholeBody.toString("utf8")) as {
        usage?: Record<string, unknown>;
        choices?: unknown;
        output?: unknown;
      };
      const responses = completed.route === "responses";
      const prompt = responses ? body.usage?.input_tokens : body.usage?.prompt_tokens;
      // Embeddings bill their input only: whatever else the usage says, nothing was generated.
      const completion =
        completed.route === "embeddings"
          ? 0
          : responses
            ? body.usage?.output_tokens
            : body.usage?.completion_tokens;
      if (Number.isInteger(prompt) && Number.isInteger(completion)) {
        // The node's own count, believed only up to what it delivered: a token is at least a byte of text.
        const delivered = responses ? deliveredOutputBytes(body.output) : deliveredTextBytes(body.choices);
        return {
          promptTokens: prompt as number,
          completionTokens: Math.min(completion as number, delivered + completionTolerance(delivered)),
        };
      }
    } catch {
      // An unreadable body bills nothing but what the receipt can prove.
    }
    return { promptTokens: null, completionTokens: 0 };
  }
  return { promptTokens: null, completionTokens: completed.relayedCompletionTokens };
}

/** The UTF-8 bytes of text a whole answer delivered: content, reasoning, refusal, tool-call arguments. */
export function deliveredTextBytes(choices: unknown): number {
  if (!Array.isArray(choices)) return 0;
  let bytes = 0;
  const text = (value: unknown) => (typeof value === "string" ? Buffer.byteLength(value) : 0);
  for (const choice of choices) {
    // A legacy completion's choice holds its text itself.
    bytes += text((choice as { text?: unknown } | null)?.text);
    const message = (choice as { message?: Record<string, unknown> } | null)?.message;
    if (message === undefined || message === null) continue;
    bytes += text(message.content) + text(message.reasoning_content) + text(message.refusal);
    if (Array.isArray(message.tool_calls)) {
      for (const call of message.tool_calls) {
        const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
        bytes += text(fn?.name) + text(fn?.arguments);
      }
    }
  }
  return bytes;
}

/** The UTF-8 bytes of text a whole Responses API answer delivered: output_text parts and function calls. */
export function deliveredOutputBytes(output: unknown): number {
  if (!Array.isArray(output)) return 0;
  let bytes = 0;
  const text = (value: unknown) => (typeof value === "string" ? Buffer.byteLength(value) : 0);
  for (const item of output) {
    const entry = item as { type?: unknown; content?: unknown; name?: unknown; arguments?: unknown } | null;
    if (entry === null || typeof entry !== "object") continue;
    if (entry.type === "function_call") bytes += text(entry.name) + text(entry.arguments);
    if (!Array.isArray(entry.content)) continue;
    for (const part of entry.content) {
      const p = part as { text?: unknown; refusal?: unknown } | null;
      bytes += text(p?.text) + text(p?.refusal);
    }
  }
  return bytes;
}
