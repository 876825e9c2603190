/** Execution of verified jobs: the agent's run loop, the node-side handlers, and the executors. */
export {
  type Agent,
  type AgentLogger,
  type AgentOutcome,
  type CreateAgentDependencies,
  createAgent,
  type ExecutionState,
} from "./agent.js";
export {
  DEFAULT_SEARCH_DIRS,
  dataDirPath,
  type FixedCommand,
  type FixedCommandName,
  type FixedCommandResult,
  findExecutable,
  fixedCommands,
  type RunFixedCommandOptions,
  runFixedCommand,
} from "./fixed-command.js";
export type {
  BenchmarkJobOptions,
  BenchmarkJobSummary,
  JobHandlers,
  JobProgress,
  PullJobOptions,
} from "./handlers.js";
export {
  createExecutableAllowlist,
  DEFAULT_LOG_LINES,
  type ExecutableEntryDefinition,
  type ExecutionContext,
  type ExecutorStep,
  executableJobTypes,
  type JobExecutor,
  jobExecutors,
  OWNERS_CONFIG_KEY,
} from "./job-executors.js";
export { MAX_LOG_LINE_CHARS, type RedactedLine, redactLogLine } from "./redact-log-line.js";
export { createResourceLocks, type WithResourceLock } from "./resource-locks.js";
