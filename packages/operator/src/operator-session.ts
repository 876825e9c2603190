/**
 * The Operator's core, without any UI: it asks the planner, gates every proposal through the
 * agent's schemas, keeps the pending plan, and on the admin's approval (and only then) signs the
 * job with the owner key, submits it to the agent over HTTP and follows it to its result. Both the
 * Ink app and headless mode drive a session and render its events.
 */
import {
  type AgentClient,
  createJobTypeRegistry,
  describeAllowlist,
  GbtError,
  isGbtError,
  type JobTypeRegistry,
  type PublishedAllowlist,
} from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import type { EarningsViewSource } from "./earnings-view.js";
import type { AgentConnection, OperatorEvent } from "./events.js";
import { earningsFacts, type Fact, gatewayFacts, statusFacts } from "./facts.js";
import type { GatewayViewSource } from "./gateway-view.js";
import type { ChatTurn, Planner, PlannerReply } from "./planner/planner.js";
import { type ProposalContext, type ProposedJob, printable, validateProposal } from "./proposal.js";
import { summarizeOutcome } from "./result-summary.js";
import { signApprovedJob } from "./sign-job.js";

export interface OperatorSessionOptions {
  agent: AgentClient;
  planner: Planner;
  /** The node every job is bound to, and its chain. */
  node: { address: Address; chainId: number };
  /** The owner key, asked for only when a job is approved. */
  signer: () => Promise<LocalAccount>;
  gateway?: GatewayViewSource;
  /** The gateway's signed earnings view of this node (public: no admin token needed). */
  earnings?: EarningsViewSource;
  /** The job types this Operator signs (default: the allowlist of its gbt version). */
  allowlist?: JobTypeRegistry;
  now?: () => number;
  newJobId?: () => string;
}

export interface OperatorSession {
  readonly node: { address: Address; chainId: number };
  readonly plannerLabel: string;
  /** Reads the agent's allowlist; the session works (plans locally) even when it fails. */
  connect(): Promise<AgentConnection>;
  /** Plans the admin's message; resolves with the proposals it added. */
  ask(text: string): Promise<ProposedJob[]>;
  /** Signs, submits and follows an approved proposal; resolves with its result event. */
  approve(proposalId: string): Promise<Extract<OperatorEvent, { type: "result" }> | undefined>;
  /** Drops a proposal without signing it. */
  decline(proposalId: string): void;
  /** Replaces a proposal's parameters (JSON object text); invalid ones keep the old proposal. */
  editParams(proposalId: string, paramsJson: string): ProposedJob | undefined;
  pending(): ProposedJob[];
  subscribe(listener: (event: OperatorEvent) => void): () => void;
  /** Stops planning and following jobs (a submitted job still finishes on the node). */
  close(): Promise<void>;
}

const MAX_HISTORY = 20;

export function createOperatorSession(options: OperatorSessionOptions): OperatorSession {
  const allowlist = options.allowlist ?? createJobTypeRegistry();
  const now = options.now ?? Date.now;
  const listeners = new Set<(event: OperatorEvent) => void>();
  const pending = new Map<string, ProposedJob>();
  const history: ChatTurn[] = [];
  const facts = new Map<string, Fact>();
  const abort = new AbortController();
  let published: PublishedAllowlist | undefined;
  let connection: AgentConnection = { state: "connecting", nodeUrl: options.agent.url };
  let proposalCount = 0;
  let lastNonce = 0;
  let account: LocalAccount | undefined;

  const emit = (event: OperatorEvent) => {
    for (const listener of listeners) listener(event);
  };
  const errorEvent = (error: unknown, proposalId?: string): OperatorEvent => {
    const gbt = isGbtError(error)
      ? error
      : new GbtError("INTERNAL", error instanceof Error ? error.message : String(error));
    return {
      type: "error",
      error: { code: gbt.code, message: gbt.message, ...(gbt.hint ? { hint: gbt.hint } : {}) },
      ...(proposalId ? { proposalId } : {}),
    };
  };

  const proposalContext = (): ProposalContext => ({
    allowlist,
    node: options.node.address,
    ...(published ? { agentTypes: new Set(published.types.map((t) => t.type)) } : {}),
  });

  /** What planners are offered: the agent's published types, else (agent unreachable) the local allowlist. */
  const offered = (): PublishedAllowlist => published ?? describeAllowlist(allowlist);

  async function refreshGateway(): Promise<void> {
    if (!options.gateway) return;
    try {
      const view = await options.gateway(options.node.address);
      facts.set("gateway", gatewayFacts(view, now()));
    } catch (error) {
      const message = isGbtError(error) ? error.message : String(error);
      facts.set("gateway", { source: "gateway", at: now(), lines: [`not available: ${message}`] });
    }
  }

  async function refreshEarnings(): Promise<void> {
    if (!options.earnings) {
      facts.set("earnings", {
        source: "gateway earnings view",
        at: now(),
        lines: ["no gateway known to read earnings from (gateway.url in the node config)"],
      });
      return;
    }
    try {
      facts.set("earnings", earningsFacts(await options.earnings(options.node.address), now()));
    } catch (error) {
      // A view that does not verify is not a fact: say why, quote nothing of it.
      const message = isGbtError(error) ? `${error.code}: ${error.message}` : String(error);
      facts.set("earnings", {
        source: "gateway earnings view",
        at: now(),
        lines: [`not available: ${message}`],
      });
    }
  }

  const session: OperatorSession = {
    node: options.node,
    plannerLabel: options.planner.label,
    async connect() {
      try {
        published = await options.agent.getAllowlist({ signal: abort.signal });
        const other = boundElsewhere(published, options.node);
        connection = other
          ? {
              state: "incompatible",
              nodeUrl: options.agent.url,
              allowlistVersion: published.version,
              message: other,
            }
          : published.version === allowlist.version
            ? {
                state: "connected",
                nodeUrl: options.agent.url,
                allowlistVersion: published.version,
                types: published.types.map((t) => t.type),
              }
            : {
                state: "incompatible",
                nodeUrl: options.agent.url,
                allowlistVersion: published.version,
                message: `The agent speaks allowlist v${published.version}, this Operator v${allowlist.version}: jobs would be rejected. Use the same gbt version on both.`,
              };
      } catch (error) {
        connection = {
          state: "unreachable",
          nodeUrl: options.agent.url,
          message: isGbtError(error) ? error.message : String(error),
        };
      }
      emit({ type: "agent", connection });
      return connection;
    },

    async ask(text) {
      const message = text.trim();
      if (message === "") return [];
      emit({ type: "user", text: message });
      emit({ type: "thinking", planner: options.planner.label });
      if (options.planner.kind === "llm") {
        await refreshGateway();
        if (options.earnings) await refreshEarnings();
      }
      let reply: PlannerReply;
      try {
        reply = await options.planner.plan({
          message,
          history: history.slice(-MAX_HISTORY),
          allowlist: offered(),
          node: options.node.address,
          facts: [...facts.values()],
          signal: abort.signal,
        });
      } catch (error) {
        emit(errorEvent(error));
        return [];
      }
      history.push({ role: "user", content: message });
      // The model's own words first (shown, never obeyed), then what became of its proposals.
      const say = reply.say.trim();
      const sources = reply.explain ? [] : [...facts.values()].map((f) => f.source);
      if (say !== "")
        emit({
          type: "reply",
          text: printable(say, 2000, { newlines: true }),
          sources: options.planner.kind === "llm" ? sources : [],
        });
      const added: ProposedJob[] = [];
      const context = proposalContext();
      for (const malformed of reply.malformed ?? []) {
        emit({
          type: "dropped",
          dropped: {
            type: malformed.tool ? printable(malformed.tool) : "(answer)",
            ...(malformed.tool ? { tool: printable(malformed.tool) } : {}),
            reason: { code: malformed.code, message: malformed.message },
          },
        });
      }
      for (const raw of reply.proposals) {
        const checked = validateProposal(raw, context);
        if (!checked.ok) {
          emit({ type: "dropped", dropped: checked.dropped });
          continue;
        }
        proposalCount += 1;
        const proposal: ProposedJob = { id: `p${proposalCount}`, ...checked.job };
        pending.set(proposal.id, proposal);
        added.push(proposal);
      }
      if (reply.explain && reply.explain.length > 0) {
        if (reply.explain.includes("gateway")) {
          if (options.gateway) await refreshGateway();
          else
            facts.set("gateway", {
              source: "gateway",
              at: now(),
              lines: ["no gateway configured (--gateway-url and --gateway-admin-token-file)"],
            });
        }
        if (reply.explain.includes("earnings")) await refreshEarnings();
        const shown = reply.explain.map((k) => facts.get(k)).filter((f): f is Fact => f !== undefined);
        if (
          reply.explain.includes("status") &&
          !facts.has("status") &&
          added.every((p) => p.type !== "status.read")
        ) {
          const status = validateProposal(
            { type: "status.read", params: {}, why: "Read the node's own status to explain it." },
            context,
          );
          if (status.ok) {
            proposalCount += 1;
            const proposal: ProposedJob = { id: `p${proposalCount}`, ...status.job };
            pending.set(proposal.id, proposal);
            added.push(proposal);
          }
        }
        emit({ type: "explanation", facts: shown });
      }
      for (const proposal of added) emit({ type: "plan", proposal });
      history.push({
        role: "assistant",
        content: say || (added.length > 0 ? `Proposed: ${added.map((p) => p.type).join(", ")}` : ""),
      });
      return added;
    },

    async approve(proposalId) {
      const job = pending.get(proposalId);
      if (!job) {
        emit(errorEvent(new GbtError("NOT_FOUND", `No pending proposal ${proposalId}.`), proposalId));
        return undefined;
      }
      pending.delete(proposalId);
      try {
        if (connection.state !== "connected") await session.connect();
        if (connection.state !== "connected" || !published) {
          throw new GbtError(
            connection.state === "incompatible" ? "CONFLICT" : "NODE_UNREACHABLE",
            connection.message ?? "The agent is not reachable.",
            {
              hint: "Start the node (`gbt serve`) or fix --node-url, then ask again.",
            },
          );
        }
        account ??= await options.signer();
        lastNonce = Math.max(now(), lastNonce + 1);
        const signed = await signApprovedJob({
          job,
          account,
          chainId: options.node.chainId,
          context: proposalContext(),
          allowlistVersion: published.version,
          nonce: lastNonce,
          now,
          ...(options.newJobId ? { newJobId: options.newJobId } : {}),
        });
        const jobId = signed.message.jobId;
        emit({ type: "signed", proposalId, jobId, jobType: job.type, issuer: account.address });
        const outcome = await options.agent.runJob({
          job: signed,
          signal: abort.signal,
          onProgress: (progress) => emit({ type: "progress", proposalId, jobId, state: progress.state }),
        });
        if (job.type === "status.read" && outcome.state === "succeeded")
          facts.set("status", statusFacts(outcome, now()));
        const result: Extract<OperatorEvent, { type: "result" }> = {
          type: "result",
          proposalId,
          jobId,
          jobType: job.type,
          state: outcome.state,
          ...(outcome.code === undefined ? {} : { code: outcome.code }),
          ...(outcome.message === undefined ? {} : { message: outcome.message }),
          summary: summarizeOutcome(job.type, outcome),
          ...(outcome.output === undefined ? {} : { output: outcome.output }),
        };
        emit(result);
        const status = facts.get("status");
        if (job.type === "status.read" && status) emit({ type: "explanation", facts: [status] });
        history.push({ role: "assistant", content: result.summary.join("\n") });
        return result;
      } catch (error) {
        emit(errorEvent(error, proposalId));
        return undefined;
      }
    },

    decline(proposalId) {
      const job = pending.get(proposalId);
      if (!job) return;
      pending.delete(proposalId);
      emit({ type: "declined", proposalId, jobType: job.type });
    },

    editParams(proposalId, paramsJson) {
      const job = pending.get(proposalId);
      if (!job) return undefined;
      let params: unknown;
      try {
        params = JSON.parse(paramsJson);
      } catch {
        emit({
          type: "edit_rejected",
          proposalId,
          error: {
            code: "INVALID_INPUT",
            message: 'the parameters are not valid JSON (write an object, e.g. {"service":"backend"})',
          },
        });
        return undefined;
      }
      const checked = validateProposal({ type: job.type, params, why: job.why }, proposalContext());
      if (!checked.ok) {
        emit({ type: "edit_rejected", proposalId, error: checked.dropped.reason });
        return undefined;
      }
      const edited: ProposedJob = { ...job, params: checked.job.params };
      pending.set(proposalId, edited);
      emit({ type: "edited", proposal: edited });
      return edited;
    },

    pending: () => [...pending.values()],

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      abort.abort();
      listeners.clear();
      await options.planner.close?.();
    },
  };
  return session;
}

/**
 * Why jobs bound to `node` would be refused by the agent that published `published` (another node
 * or chain), or undefined when they match or the agent does not say. The Operator never takes the
 * agent's word for whom to sign for: the binding comes from --node / the config, and a mismatch
 * stops it before anything is signed.
 */
function boundElsewhere(
  published: { node?: string | undefined; chainId?: number | undefined },
  node: { address: Address; chainId: number },
): string | undefined {
  if (published.node !== undefined && published.node.toLowerCase() !== node.address.toLowerCase()) {
    return `The agent at this URL is node ${published.node}, but jobs would be signed for ${node.address}: the node would refuse them (WRONG_AUDIENCE). Pass --node ${published.node} if that is your node.`;
  }
  if (published.chainId !== undefined && published.chainId !== node.chainId) {
    return `The agent's node is on chain ${published.chainId}, but jobs would be signed for chain ${node.chainId}: the node would refuse them (WRONG_CHAIN). Pass --chain-id ${published.chainId}.`;
  }
  return undefined;
}
