/**
 * How the gateway talks to a node when it checks it: the same link (URL, link token, request id
 * header) as consumer traffic, so a node cannot tell a challenge from real work. Nothing here is
 * billed or settled: challenge requests never reach the receipt settler, so no consumer pays for
 * them and the node earns nothing for them (see the README's "Trust and verification").
 */
import { randomBytes } from "node:crypto";
import { nodePaths, RECEIPT_HEADER, REQUEST_ID_HEADER } from "@gbt/protocol";
import { z } from "zod";
import type { NodeRequestError, NodeResponse } from "../pool/node-transport.js";
import type { InstanceLink } from "../pool/pool-instance.js";

/** A challenge's answer is a short completion; a node sending more is cut off (and the check fails). */
export const MAX_CHALLENGE_ANSWER_BYTES = 1024 * 1024;

/** The part of an OpenAI chat completion a check reads; the rest may be anything. */
const completionSchema = z.object({
  choices: z
    .array(z.object({ message: z.object({ content: z.string().nullable().optional() }).passthrough() }))
    .min(1),
  usage: z
    .object({ completion_tokens: z.number().int().min(0) })
    .passthrough()
    .optional(),
});

export type NodeAnswer =
  | {
      ok: true;
      content: string;
      completionTokens: number | null;
      /** The signed receipt as JSON text, when the node sent one. */
      receipt: string | null;
      requestId: string;
    }
  | { ok: false; reason: string; requestId: string };

export function challengeRequestId(kind: string): string {
  return `vf-${kind}-${randomBytes(9).toString("base64url")}`;
}

/** One non-streamed completion on one node; never throws. */
export async function askNode(
  link: InstanceLink,
  body: Record<string, unknown>,
  options: { timeoutMs: number; requestId: string },
): Promise<NodeAnswer> {
  const { requestId } = options;
  let response: NodeResponse;
  try {
    response = await link.transport.request(new URL(nodePaths.chatCompletions, `${link.url}/`), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: link.authorization,
        [REQUEST_ID_HEADER]: requestId,
      },
      body: JSON.stringify({ ...body, stream: false }),
      timeoutMs: options.timeoutMs,
      maxBytes: MAX_CHALLENGE_ANSWER_BYTES,
    });
  } catch (error) {
    return { ok: false, reason: `unreachable (${(error as NodeRequestError).reason ?? "error"})`, requestId };
  }
  if (response.status !== 200) return { ok: false, reason: `HTTP ${response.status}`, requestId };
  let json: unknown;
  try {
    json = JSON.parse(response.body.toString("utf8"));
  } catch {
    return { ok: false, reason: "the answer is not JSON", requestId };
  }
  const parsed = completionSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: "the answer is not a chat completion", requestId };
  const header = response.headers[RECEIPT_HEADER];
  return {
    ok: true,
    content: parsed.data.choices[0]?.message.content ?? "",
    completionTokens: parsed.data.usage?.completion_tokens ?? null,
    receipt: typeof header === "string" ? Buffer.from(header, "base64url").toString("utf8") : null,
    requestId,
  };
}

export type DecodeMeasurement =
  | { ok: true; tpotMs: number; shortMs: number; longMs: number; tokens: [number, number] }
  | { ok: false; reason: string };

/**
 * Time per output token from two non-streamed completions of different lengths, timed on the
 * gateway's clock: (t_long − t_short) / (n_long − n_short). Everything both requests pay once
 * (network round trip, prompt, HTTP) cancels out, so the result compares with a benchmark the
 * node measured in process; streaming would add a per-token framing cost instead.
 */
export async function measureDecode(
  link: InstanceLink,
  body: Record<string, unknown>,
  options: {
    timeoutMs: number;
    shortTokens: number;
    longTokens: number;
    elapsed: () => number;
    longFirst: boolean;
  },
): Promise<DecodeMeasurement> {
  const timed = async (maxTokens: number) => {
    const started = options.elapsed();
    const answer = await askNode(
      link,
      { ...body, max_tokens: maxTokens },
      { timeoutMs: options.timeoutMs, requestId: challengeRequestId("benchmark") },
    );
    return { answer, ms: options.elapsed() - started, maxTokens };
  };
  const first = await timed(options.longFirst ? options.longTokens : options.shortTokens);
  const second = await timed(options.longFirst ? options.shortTokens : options.longTokens);
  const [long, short] = options.longFirst ? [first, second] : [second, first];
  if (!long.answer.ok) return { ok: false, reason: long.answer.reason };
  if (!short.answer.ok) return { ok: false, reason: short.answer.reason };
  const longTokens = long.answer.completionTokens ?? long.maxTokens;
  const shortTokens = short.answer.completionTokens ?? short.maxTokens;
  if (longTokens - shortTokens < 4) return { ok: false, reason: "the answers are too short to time" };
  if (!(long.ms > short.ms)) return { ok: false, reason: "the longer answer came faster (noise)" };
  return {
    ok: true,
    tpotMs: (long.ms - short.ms) / (longTokens - shortTokens),
    shortMs: short.ms,
    longMs: long.ms,
    tokens: [shortTokens, longTokens],
  };
}
