/**
 * The planner that needs no model: a few patterns for the common intents (status, restart, pull /
 * remove / switch a model, benchmark, drain / resume, logs, explaining the gateway's view), so the
 * Operator is useful offline. Anything else gets a clear "I can't do that" with what it can do.
 * Values it lifts from the message (a model name, a drain reason) are proposed as typed; the
 * agent's schemas then decide, so `pull ../../etc/passwd` is dropped, not cleaned up.
 */
import type { RawProposal } from "../proposal.js";
import type { Planner, PlannerReply, PlanningContext } from "./planner.js";

interface Intent {
  proposals: RawProposal[];
  explain?: ("gateway" | "status" | "earnings")[];
}

const MODEL_TOKEN = String.raw`(\S+)`;

const matchers: ((text: string, raw: string) => Intent | undefined)[] = [
  (_text, raw) => {
    const m = new RegExp(String.raw`\b(?:pull|download)\s+(?:the\s+)?(?:model\s+)?${MODEL_TOKEN}`, "i").exec(
      raw,
    );
    if (!m || /^(status|logs?)$/i.test(m[1] ?? "")) return undefined;
    return job("model.pull", { model: trimModel(m[1]) }, `You asked to pull ${trimModel(m[1])}.`);
  },
  (_text, raw) => {
    const m = new RegExp(
      String.raw`\b(?:remove|delete|rm|uninstall)\s+(?:the\s+)?(?:model\s+)?${MODEL_TOKEN}`,
      "i",
    ).exec(raw);
    return m
      ? job("model.remove", { model: trimModel(m[1]) }, `You asked to remove ${trimModel(m[1])}.`)
      : undefined;
  },
  (_text, raw) => {
    const m = new RegExp(
      String.raw`\b(?:switch|change)\s+(?:the\s+)?(?:model\s+)?(?:to\s+)?(?:model\s+)?${MODEL_TOKEN}`,
      "i",
    ).exec(raw);
    return m
      ? job("model.switch", { model: trimModel(m[1]) }, `You asked to serve ${trimModel(m[1])} instead.`)
      : undefined;
  },
  (text) => {
    if (!/\b(restart|reload|reboot|bounce)\b/.test(text)) return undefined;
    const service = /\b(server|http|api)\b/.test(text) && !/\bbackend\b/.test(text) ? "server" : "backend";
    return job("service.restart", { service }, `You asked to restart the ${service}.`);
  },
  (text) => {
    if (!/\bbench(mark)?s?\b/.test(text)) return undefined;
    const mode = /\b(serve|concurren\w*|capacity|sweep)\b/.test(text) ? "serve" : undefined;
    return job("benchmark.run", mode ? { mode } : {}, `You asked for a ${mode ?? "micro"} benchmark.`);
  },
  (text) => {
    if (!/\b(undrain|resume|unpause)\b/.test(text)) return undefined;
    return job("node.resume", {}, "You asked the node to take requests again.");
  },
  (text, raw) => {
    if (!/\b(drain|pause|stop (taking|accepting))\b/.test(text)) return undefined;
    const reason = /\b(?:because|for|reason:?)\s+(.+)$/i.exec(raw)?.[1]?.trim();
    return job("node.drain", reason ? { reason } : {}, "You asked the node to stop taking new requests.");
  },
  (text) => {
    if (!/\blogs?\b/.test(text)) return undefined;
    const lines = /\b(\d{1,4})\s*(?:lines?)?\b/.exec(text)?.[1];
    return job(
      "logs.tail",
      lines ? { lines: Number(lines) } : {},
      "You asked for the node's recent log lines.",
    );
  },
  (text) => {
    // "how much did I earn this week?", "earnings", "what's claimable?": the gateway's signed earnings view.
    if (!/\b(earn(ed|ings?|s)?|income|revenue|credits|claimable|payouts?|paid|made this)\b/.test(text))
      return undefined;
    return { proposals: [], explain: ["earnings"] };
  },
  (text) => {
    if (!/\b(parked|ramp(ing|-up| up)?|gateway|breaker|eligible|pool(ed)?|routed|traffic)\b/.test(text))
      return undefined;
    return { proposals: [], explain: ["gateway", "status"] };
  },
  (text) => {
    if (!/\b(status|health|healthy|how('s| is)|state|models?|doing|up\b|check)\b/.test(text))
      return undefined;
    return job("status.read", {}, "You asked how the node is doing.");
  },
];

function job(type: string, params: Record<string, unknown>, why: string): Intent {
  return { proposals: [{ type, params, why }] };
}

/** Drops sentence punctuation around a model name; everything else is left for the schema to judge. */
function trimModel(token: string | undefined): string {
  return (token ?? "").replace(/^["'`]|["'`.,!?]+$/g, "");
}

function intentOf(raw: string): Intent | undefined {
  const text = raw.toLowerCase();
  for (const matcher of matchers) {
    const intent = matcher(text, raw);
    if (intent) return intent;
  }
  return undefined;
}

const PRONOUNS = new Set(["it", "that", "this", "them", "that one", "this one"]);

/**
 * "pull gbt-test-small then switch to it": a model param that is a pronoun names the model of the
 * job before it. With no earlier model the pronoun stays, and the agent's schema or preflight says no.
 */
function resolvePronouns(proposals: Intent["proposals"]): Intent["proposals"] {
  let lastModel: string | undefined;
  return proposals.map((proposal) => {
    const params = proposal.params as Record<string, unknown>;
    const model = params.model;
    if (typeof model !== "string") return proposal;
    if (PRONOUNS.has(model.toLowerCase()) && lastModel !== undefined) {
      const why = typeof proposal.why === "string" ? proposal.why.replace(model, lastModel) : proposal.why;
      return { ...proposal, params: { ...params, model: lastModel }, why };
    }
    lastModel = model;
    return proposal;
  });
}

const HELP =
  "Offline, I understand: status · restart the backend / server · pull, remove or switch to a model NAME · benchmark · drain [because …] / resume · logs [N] · why is my node parked? (gateway view) · how much did I earn this week? (earnings view).";

/** The deterministic planner. */
export function createOfflinePlanner(): Planner {
  return {
    kind: "rules",
    label: "offline",
    async plan(context: PlanningContext): Promise<PlannerReply> {
      const message = context.message.trim();
      if (/^(help|\?|what can you do\??)$/i.test(message)) return { say: HELP, proposals: [] };
      // "drain then restart the backend": each part its own job, when every part is understood.
      const parts = message.split(/\s*(?:;|,?\s+and then\s+|,?\s+then\s+|,\s+and\s+)\s*/i).filter(Boolean);
      const intents = parts.length > 1 ? parts.map(intentOf) : [intentOf(message)];
      if (intents.some((intent) => intent === undefined)) {
        return {
          say: `I can't do that: it is not something I can turn into an allowlisted job. ${HELP}`,
          proposals: [],
        };
      }
      const proposals = resolvePronouns(intents.flatMap((intent) => intent?.proposals ?? []));
      const explain = [...new Set(intents.flatMap((intent) => intent?.explain ?? []))];
      return { say: "", proposals, ...(explain.length > 0 ? { explain } : {}) };
    },
  };
}
