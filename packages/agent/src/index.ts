/**
 * @gbt/agent: the Node Agent, the one component allowed to change a node. It executes only jobs
 * that are signed by an owner, meant for this node, fresh, unseen, of an allowlisted type, with
 * parameters that pass that type's schema and policy; every outcome goes to a hash-chained audit log.
 */

export * from "./agent-database.js";
export * from "./allowlist/index.js";
export * from "./audit/index.js";
export * from "./envelope/index.js";
export * from "./executor/index.js";
export * from "./http/index.js";
