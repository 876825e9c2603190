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

  /*
   * Model and service jobs. Optional: a node without them answers those jobs PREFLIGHT_FAILED.
   */
  /** The ids of the models the node serves now. */
  listModels?(): Promise<string[]>;
  /**
   * Throws (with the reason) when `model` (a source: NAME@VERSION, hf:…, a URL, an id) cannot be
   * pulled on this node: unknown source, a source the node's policy refuses, a model that does not
   * fit, an unsupported backend. Resolves with the id the model will be served as, when known.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: handlers that only check (and throw) return nothing.
  checkPullSource?(model: string, options?: PullJobOptions): Promise<void | { id: string }>;
  /** Makes `model` served and loaded; `createdFile` says whether a model file was written for it, `id` what it is served as. */
  pullModel?(model: string, options?: PullJobOptions): Promise<{ createdFile: boolean; id?: string }>;
  /** Throws when a model on this node cannot run here (its manifest's backends or VRAM band): model.switch asks first. */
  checkModelFits?(model: string): Promise<void>;
  /** Stops serving `model` (unloads it); its file stays. */
  unloadModel?(model: string): Promise<void>;
  /** Deletes the model's file when it lies under the node's models dir; false when there was none to delete. */
  deleteModelFile?(model: string): Promise<boolean>;
  /** Restarts a service of the node without stopping the agent endpoint answering the job. */
  restartService?(service: "backend" | "server"): Promise<void>;
  /** The backend's health. */
  backendHealth?(): Promise<{ ok: boolean; detail?: string }>;
  /** Whether `model` is on this node already (served, or its file is in the models dir): what model.switch needs. */
  hasModel?(model: string): Promise<boolean>;

  /** Runs a benchmark on the node's backend, signs and stores its record; resolves with its summary. */
  runBenchmark?(options: BenchmarkJobOptions): Promise<BenchmarkJobSummary>;
  /** The last `lines` lines of the node's log, oldest first (the agent redacts and clips them). */
  tailLogs?(lines: number): Promise<string[]>;
}

/** model.pull's optional parameters, as the handler receives them. */
export interface PullJobOptions {
  /** Install as this id. */
  as?: string;
  /** The expected sha256 of a bare URL's file. */
  sha256?: string;
  /** Where the pull stands (the job's progress, shown by `gbt job status` while it runs). */
  onProgress?: (progress: JobProgress) => void;
}

/** A running job's progress, as its executor reports it. */
export interface JobProgress {
  /** What it is doing now, e.g. "resolve", "download", "verify". */
  phase: string;
  /** Work done and, when known, the whole, in bytes. */
  bytes?: number;
  totalBytes?: number | null;
}

/** benchmark.run's parameters, as the handler receives them. */
export interface BenchmarkJobOptions {
  mode: "micro" | "serve";
  genTokens?: number;
  promptTokens?: number;
}

/** What benchmark.run answers: the stored record's id and headline numbers. */
export interface BenchmarkJobSummary {
  recordId: string;
  mode: "micro" | "serve";
  model: string;
  decodeTokPerSec: number;
  ttftMsP50: number | null;
  meetsFloor: boolean;
  eligibleCapacity: number;
  warnings: string[];
}
