import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateTestModel } from "@gbt/node";
import { createJobTypeRegistry, describeAllowlist } from "@gbt/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SessionFixture, sessionFixture } from "../testing/session-fixture.js";
import {
  answerSchemaOf,
  createEmbeddedPlanner,
  grammarSchemaOf,
  replyFromAnswer,
} from "./embedded-planner.js";

describe("embedded planner: grammar from the allowlist, answers still judged by the schemas", () => {
  it("maps each type's params to a grammar: enums stay enums, optional params may be null, strings are bounded", () => {
    const restart = grammarSchemaOf(createJobTypeRegistry().get("service.restart")?.jsonSchema() ?? {});
    expect(restart).toEqual({ type: "object", properties: { service: { enum: ["backend", "server"] } } });
    const bench = grammarSchemaOf(
      createJobTypeRegistry().get("benchmark.run")?.jsonSchema() ?? {},
    ) as unknown as {
      properties: Record<string, unknown>;
    };
    expect(bench.properties.mode).toEqual({ oneOf: [{ enum: ["micro", "serve"] }, { type: "null" }] });
    const answer = answerSchemaOf(describeAllowlist(createJobTypeRegistry())) as unknown as {
      properties: { jobs: { maxItems: number } };
    };
    expect(answer.properties.jobs.maxItems).toBe(3);
  });

  it("reads an answer's jobs, turning the grammar's nulls into absent params and keeping stray fields for the gate", () => {
    const reply = replyFromAnswer(
      JSON.stringify({
        say: "ok",
        jobs: [
          {
            type: "benchmark.run",
            params: { mode: null, genTokens: 8, promptTokens: null },
            why: "w",
            sudo: true,
          },
        ],
      }),
    );
    expect(reply.proposals).toEqual([
      { type: "benchmark.run", params: { genTokens: 8 }, why: "w", extra: { sudo: true } },
    ]);
    expect(replyFromAnswer("not json").malformed?.[0]?.message).toMatch(/not JSON/);
  });

  describe("on the generated random-weight test model (real llama.cpp)", () => {
    let dir: string;
    let fixture: SessionFixture;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "gbt-embedded-planner-"));
      const modelPath = join(dir, "gbt-test-tiny.gguf");
      await generateTestModel(modelPath, { shape: "small" });
      fixture = await sessionFixture(createEmbeddedPlanner({ modelPath, maxTokens: 1024, seed: 1 }));
      await fixture.session.connect();
    }, 60_000);
    afterAll(async () => {
      await fixture?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("answers within the grammar; whatever it proposes passes the agent's schemas or is dropped, and nothing is signed", async () => {
      const proposals = await fixture.session.ask("status");
      const errors = fixture.events.filter((e) => e.type === "error");
      expect(errors).toEqual([]);
      // The grammar holds even when the weights are noise: the answer is JSON of the agreed shape.
      const dropped = fixture.events.flatMap((e) => (e.type === "dropped" ? [e.dropped] : []));
      expect(dropped.filter((d) => /not JSON|not an object/.test(d.reason.message))).toEqual([]);
      for (const p of proposals) expect(createJobTypeRegistry().types()).toContain(p.type);
      expect(
        fixture.events.some((e) => e.type === "plan" || e.type === "dropped" || e.type === "reply"),
      ).toBe(true);
      expect(fixture.signerCalls()).toBe(0);
      expect(fixture.agent.received).toHaveLength(0);
    }, 60_000);
  });
});
