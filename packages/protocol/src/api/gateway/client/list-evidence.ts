/** `GET /v1/gateway/evidence` with the admin token: evidence records, newest first, optionally one node's. */
import { gatewayPaths } from "../paths.js";
import { type EvidenceRecord, evidenceListSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export interface ListEvidenceParameters {
  /** Only this node's records (its address). */
  node?: string;
  /** 1–500 (the gateway's default: 500). */
  limit?: number;
}
export type ListEvidenceReturnType = EvidenceRecord[];

export async function listEvidence(
  client: GatewayTransport,
  parameters: ListEvidenceParameters = {},
): Promise<ListEvidenceReturnType> {
  const list = await client.request({
    path: gatewayPaths.evidence,
    query: { node: parameters.node || undefined, limit: parameters.limit || undefined },
    auth: "admin",
    schema: evidenceListSchema,
    what: "evidence list",
    maxBytes: 32 * 1024 * 1024,
  });
  return list.data;
}
