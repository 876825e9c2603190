/** Builds the planner the admin chose; the offline one needs nothing. */
import { GbtError } from "@gbt/protocol";
import { createEmbeddedPlanner } from "./embedded-planner.js";
import { createOfflinePlanner } from "./offline-planner.js";
import { createOllamaPlanner } from "./ollama-planner.js";
import { createOpenAIPlanner } from "./openai-planner.js";
import type { Planner } from "./planner.js";

export const plannerKinds = ["offline", "ollama", "openai", "embedded"] as const;
export type PlannerKind = (typeof plannerKinds)[number];

export type PlannerChoice =
  | { kind: "offline" }
  | { kind: "openai"; url: string; model: string; apiKey?: string | undefined }
  | { kind: "ollama"; url: string; model: string }
  | { kind: "embedded"; modelPath: string; modelName?: string | undefined; threads?: number | undefined };

export function createPlanner(choice: PlannerChoice): Planner {
  switch (choice.kind) {
    case "offline":
      return createOfflinePlanner();
    case "openai":
      return createOpenAIPlanner({
        baseURL: choice.url,
        model: choice.model,
        ...(choice.apiKey ? { apiKey: choice.apiKey } : {}),
      });
    case "ollama":
      return createOllamaPlanner({ host: choice.url, model: choice.model });
    case "embedded":
      return createEmbeddedPlanner({
        modelPath: choice.modelPath,
        ...(choice.modelName ? { modelName: choice.modelName } : {}),
        ...(choice.threads ? { threads: choice.threads } : {}),
      });
    default:
      throw new GbtError("USAGE", `Unknown planner ${(choice as { kind: string }).kind}.`, {
        hint: `Use one of ${plannerKinds.join(", ")}.`,
      });
  }
}
