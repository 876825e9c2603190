/**
 * The door's limits with the admin token: `GET /v1/gateway/limits` (defaults and overrides),
 * `PUT` and `DELETE /v1/gateway/limits/{keys,accounts}/:id` (one subject's).
 */
import { gatewayPaths } from "../paths.js";
import {
  type LimitsInput,
  type LimitsOverview,
  limitsOverviewSchema,
  type SubjectLimits,
  subjectLimitsSchema,
} from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export interface SubjectParameters {
  kind: "key" | "account";
  id: string;
}

const pathOf = ({ kind, id }: SubjectParameters) =>
  gatewayPaths.subjectLimits(kind === "key" ? "keys" : "accounts", id);

export function getLimits(client: GatewayTransport): Promise<LimitsOverview> {
  return client.request({
    path: gatewayPaths.limits,
    auth: "admin",
    schema: limitsOverviewSchema,
    what: "limits",
    maxBytes: 16 * 1024 * 1024,
  });
}

export function setLimits(
  client: GatewayTransport,
  parameters: SubjectParameters & { limits: LimitsInput },
): Promise<SubjectLimits> {
  return client.request({
    method: "PUT",
    path: pathOf(parameters),
    auth: "admin",
    body: parameters.limits,
    schema: subjectLimitsSchema,
    what: "limits",
  });
}

export function clearLimits(client: GatewayTransport, parameters: SubjectParameters): Promise<SubjectLimits> {
  return client.request({
    method: "DELETE",
    path: pathOf(parameters),
    auth: "admin",
    schema: subjectLimitsSchema,
    what: "limits",
  });
}
