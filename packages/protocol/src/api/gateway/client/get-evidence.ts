/** `GET /v1/gateway/evidence/:id` with the admin token: one record with its hash and slashing proposal. */
import { GbtError } from "../../../errors.js";
import { gatewayPaths } from "../paths.js";
import { type EvidenceRecord, evidenceIdSchema, evidenceRecordSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type GetEvidenceReturnType = EvidenceRecord;

/** The id is checked before anything is sent: it becomes part of the path. */
export async function getEvidence(client: GatewayTransport, id: string): Promise<GetEvidenceReturnType> {
  if (!evidenceIdSchema.safeParse(id).success) {
    throw new GbtError("INVALID_INPUT", `"${id.slice(0, 40)}" is not an evidence id.`, {
      hint: "Evidence ids look like ev_0123456789abcdef (see `gbt gateway evidence list`).",
    });
  }
  return client.request({
    path: gatewayPaths.evidenceRecord(id),
    auth: "admin",
    schema: evidenceRecordSchema,
    what: "evidence record",
    hints: { NOT_FOUND: "List the records with `gbt gateway evidence list`." },
  });
}
