/**
 * The features beside routing and billing: the model registry, the job relay, verification and
 * settlement. Each is created with its own options (`createModelRegistry`, `createJobRelay`,
 * `createVerification`, `createSettlement`) and started once by the server with the narrow ports
 * it declares (a slice of the pool, a ledger query, its own tables), never the gateway's whole
 * state. What it gives back is typed: its routes, and the hooks the hot path and billing call.
 */

import type { GatewayRoutes } from "./http/gateway-env.js";
import type { ObservedCompletion, RequestAdmission } from "./proxy/admission.js";

/** What a started feature adds to the gateway. */
export interface GatewayFeature {
  /** Its routes, mounted after the core ones and before the admin API (whose 401 they precede). */
  routes?: GatewayRoutes;
  /** Which instances a request may use (verification's minimum trust tier). */
  admit?: RequestAdmission;
  /** Offered every complete non-streamed response, after the consumer has it (sampling). */
  observe?: (completion: ObservedCompletion) => void;
  /** The payout multiplier of an instance (reputation), in [0, 1]. */
  payoutFactor?: (instanceId: string) => number;
  /** The trust view shown beside each instance in `GET /v1/gateway/nodes`. */
  nodeTrust?: (instanceId: string) => unknown;
  /** Stops timers and background work; the database is closed after every feature's close. */
  close?(): Promise<void> | void;
}

/** A feature as created, before the server starts it with its ports. */
export interface FeatureStarter<Ports, Feature extends GatewayFeature = GatewayFeature> {
  /** Short name, for logs. */
  readonly name: string;
  start(ports: Ports): Feature | Promise<Feature>;
}
