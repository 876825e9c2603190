/**
 * What the agent may do to its node, as an injected interface: executors call these and nothing
 * else, so tests pass small in-memory implementations and the node server passes the real ones.
 */

/** The node-side capabilities the allowlisted executors need. */
export interface JobHandlers {
  /** The node's status report (backend, models, load, version), as JSON. */
  status(): Promise<unknown>;
  /** Stops taking new requests; requests in flight finish. */
  drain(reason?: string): Promise<void>;
  /** Takes requests again after a drain. */
  resume(): Promise<void>;
  isDraining(): boolean | Promise<boolean>;
  /** The node's configuration document, as currently stored. */
  readConfig(): Promise<Record<string, unknown>>;
  /** Replaces the node's configuration document. */
  writeConfig(next: Record<string, unknown>): Promise<void>;
}
