import {
  type EffectiveLimits,
  GbtError,
  type LimitsInput,
  type LimitsOverview,
  type SubjectLimits,
} from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { renderTable } from "../../format.js";
import { adminGatewayClient, gatewayAdminToken, gatewayPathFlags } from "../../gateway-paths.js";
import { GbtCommand } from "../../gbt-command.js";

const limitFlag = (description: string) =>
  Flags.string({ description: `${description} A number, or "none" to remove the limit.` });

export default class GatewayLimits extends GbtCommand {
  static override summary = "Show or set the gateway's limits per API key and per account.";
  static override description =
    "Limits at the door: requests per minute (exact over any sliding minute), tokens per minute (the prompt's bytes / 4 plus max_tokens, as OpenAI counts them), concurrent requests, and an account's spend budget per day or month. A request over a limit is answered 429 with Retry-After; every answer to a limited key carries x-ratelimit-{limit,remaining,reset}-{requests,tokens}. Defaults for every key and account come from gateway.json's `limits`; what this command sets overrides them, is kept in the gateway database, and applies to the next request. Talks to a running gateway with its admin token.";
  static override examples = [
    { description: "The defaults and every override", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "60 requests a minute and 4 at once for one key",
      command: "<%= config.bin %> <%= command.id %> --key key_… --rpm 60 --concurrent 4",
    },
    {
      description: "A daily budget of 2.50 credits for an account",
      command: "<%= config.bin %> <%= command.id %> --account acct_… --budget 2.5 --period day",
    },
    {
      description: "Back to gateway.json's limits for a key",
      command: "<%= config.bin %> <%= command.id %> --key key_… --clear",
    },
  ];
  static override flags = {
    url: Flags.string({ description: "Gateway base URL.", default: "http://127.0.0.1:8080" }),
    key: Flags.string({ description: "The API key id (key_…) whose limits to set.", exclusive: ["account"] }),
    account: Flags.string({
      description: "The account id (acct_…) whose limits to set.",
      exclusive: ["key"],
    }),
    rpm: limitFlag("Requests per minute."),
    tpm: limitFlag("Tokens per minute."),
    concurrent: limitFlag("Requests at once."),
    budget: limitFlag("Credits the account may spend per --period (accounts only)."),
    period: Flags.string({ description: "The budget's period.", options: ["day", "month"] }),
    clear: Flags.boolean({ description: "Remove this subject's overrides (back to gateway.json)." }),
    ...gatewayPathFlags,
  };

  async run(): Promise<LimitsOverview | SubjectLimits> {
    const { flags } = await this.parse(GatewayLimits);
    const client = adminGatewayClient(flags.url, await gatewayAdminToken(flags));
    const subject =
      flags.key !== undefined
        ? { kind: "key" as const, id: flags.key }
        : flags.account !== undefined
          ? { kind: "account" as const, id: flags.account }
          : null;
    const limits: LimitsInput = {};
    const setOne = (
      field: "requestsPerMinute" | "tokensPerMinute" | "concurrentRequests",
      flag: string,
      text: string | undefined,
    ) => {
      if (text !== undefined) limits[field] = parseLimit(flag, text, false);
    };
    setOne("requestsPerMinute", "--rpm", flags.rpm);
    setOne("tokensPerMinute", "--tpm", flags.tpm);
    setOne("concurrentRequests", "--concurrent", flags.concurrent);
    if (flags.budget !== undefined) limits.budgetMicro = parseLimit("--budget", flags.budget, true);
    if (flags.period !== undefined) limits.budgetPeriod = flags.period as "day" | "month";
    const changing = Object.keys(limits).length > 0 || flags.clear;
    if (subject === null) {
      if (changing) {
        throw new GbtError("USAGE", "Say whose limits to change: --key KEY_ID or --account ACCOUNT_ID.", {
          hint: "Defaults for everyone live in gateway.json's `limits` (perKey, perAccount).",
        });
      }
      const overview = await client.getLimits();
      this.out(
        [
          `Every key:     ${describe(overview.perKey)}`,
          `Every account: ${describe(overview.perAccount)}`,
          overview.overrides.length === 0
            ? "No key or account has limits of its own (set them with --key or --account)."
            : renderTable(
                ["SUBJECT", "ID", "LIMITS"],
                overview.overrides.map((entry) => [entry.kind, entry.id, describe(entry.limits)]),
              ),
        ].join("\n"),
      );
      return overview;
    }
    if (!changing) {
      throw new GbtError(
        "USAGE",
        "Nothing to set: give --rpm, --tpm, --concurrent, --budget/--period or --clear.",
      );
    }
    if (flags.clear && Object.keys(limits).length > 0) {
      throw new GbtError("USAGE", "--clear removes every override; give it alone.");
    }
    const result = flags.clear
      ? await client.clearLimits(subject)
      : await client.setLimits({ ...subject, limits });
    this.out(`${result.kind} ${result.id}: ${describe(result.limits)}`);
    return result;
  }
}

/** A flag's number (credits for a budget, as micro-credits), or null for "none". */
function parseLimit(flag: string, text: string, credits: boolean): number | null {
  if (text.trim().toLowerCase() === "none") return null;
  const value = Number(text);
  const micro = credits ? Math.round(value * 1_000_000) : value;
  if (!Number.isFinite(value) || value < (credits ? 0 : 1) || !Number.isInteger(micro)) {
    throw new GbtError(
      "USAGE",
      `${flag} must be ${credits ? "a number of credits" : "a whole number ≥ 1"} or "none"; got "${text.slice(0, 32)}".`,
    );
  }
  return micro;
}

function describe(limits: EffectiveLimits): string {
  const parts = [
    limits.requestsPerMinute !== undefined ? `${limits.requestsPerMinute} requests/min` : null,
    limits.tokensPerMinute !== undefined ? `${limits.tokensPerMinute} tokens/min` : null,
    limits.concurrentRequests !== undefined ? `${limits.concurrentRequests} at once` : null,
    limits.budgetMicro !== undefined
      ? `budget ${(limits.budgetMicro / 1_000_000).toFixed(2)} credits/${limits.budgetPeriod ?? "month"}`
      : null,
  ].filter((part) => part !== null);
  return parts.length === 0 ? "no limits" : parts.join(", ");
}
