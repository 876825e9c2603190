/**
 * @gbt/operator: the terminal assistant of a node's admin. It plans with a deterministic planner
 * or an LLM (Ollama, any OpenAI-compatible endpoint, or a GGUF in process), explains from the
 * node's status and the gateway's view, and hands work to the Node Agent only as jobs the admin
 * approved and the owner key signed. It talks to the agent over HTTP only,
 * with @gbt/protocol's agent client. Test fakes are in `@gbt/operator/testing`.
 */
export type { AgentConnection, OperatorEvent, OperatorEventType } from "./events.js";
export { type Fact, gatewayFacts, renderFacts, statusFacts } from "./facts.js";
export {
  type GatewayNodeView,
  type GatewayViewOptions,
  type GatewayViewSource,
  gatewayViewSource,
} from "./gateway-view.js";
export { exitCodeOf, type HeadlessEvent, type RunHeadlessOptions, runHeadless } from "./headless.js";
export {
  createOperatorSession,
  type OperatorSession,
  type OperatorSessionOptions,
} from "./operator-session.js";
export { allowlistTools, toolNameOf } from "./planner/allowlist-tools.js";
export {
  createPlanner,
  type PlannerChoice,
  type PlannerKind,
  plannerKinds,
} from "./planner/create-planner.js";
export { createEmbeddedPlanner, type EmbeddedPlannerOptions } from "./planner/embedded-planner.js";
export { createOfflinePlanner } from "./planner/offline-planner.js";
export { createOllamaPlanner, type OllamaPlannerOptions } from "./planner/ollama-planner.js";
export { createOpenAIPlanner, type OpenAIPlannerOptions } from "./planner/openai-planner.js";
export type { ChatTurn, Planner, PlannerReply, PlanningContext } from "./planner/planner.js";
export {
  type DroppedProposal,
  type ProposedJob,
  printable,
  type RawProposal,
  validateProposal,
} from "./proposal.js";
export { type RunOperatorOptions, runOperator } from "./run-operator.js";
export { signApprovedJob } from "./sign-job.js";
