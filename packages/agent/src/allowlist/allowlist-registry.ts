/**
 * The allowlist: the only job types this agent will consider, each with protocol's strict
 * parameter schema, an optional policy, and (attached later) the steps that carry it out. A job
 * names the allowlist version it was written against, so an issuer and a node that disagree on
 * what a type means fail loudly instead of running something else.
 */
import {
  type CreateJobTypeRegistryOptions,
  createJobTypeRegistry,
  type JobTypeEntry,
  type JobTypeRegistry,
  type JobTypeSchema,
} from "@gbt/protocol";
import type { Address } from "viem";
import { jobTypes } from "./job-types.js";

/** What a policy may look at besides the parameters. */
export interface PolicyContext {
  /** The node's owners at the time of the check. */
  owners: readonly Address[];
  /** Clock in milliseconds. */
  now: number;
}

/** A step of carrying out a job; its context is defined by the executor that supplies it. */
export type JobStep = (params: never, ctx: never) => unknown;

/** One allowlisted job type: its wire schema, and what the agent adds to it. */
export interface AllowlistEntryDefinition extends JobTypeSchema {
  /** Throws GbtError("POLICY_DENIED") when valid parameters must still not run here. */
  policy?: (params: unknown, ctx: PolicyContext) => void;
  preflight?: JobStep;
  execute?: JobStep;
  verify?: JobStep;
  rollback?: JobStep;
}

/** An entry of the registry: its definition and its parameters as JSON Schema. */
export type AllowlistEntry = JobTypeEntry<AllowlistEntryDefinition>;

export type AllowlistRegistry = JobTypeRegistry<AllowlistEntryDefinition>;

export type CreateAllowlistOptions = CreateJobTypeRegistryOptions<AllowlistEntryDefinition>;

/** Builds the registry (default: this version's job types with their policies); executors are attached by passing entries that carry them. */
export function createAllowlist(options: CreateAllowlistOptions = {}): AllowlistRegistry {
  return createJobTypeRegistry({ ...options, entries: options.entries ?? jobTypes });
}
