import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isGbtError } from "@gbt/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  backendChoiceSchema,
  type DetectedBackend,
  detectBackends,
  detectedBackendSchema,
  resolveBackendChoice,
} from "./detect-backends.js";

interface TestServer {
  url: string;
  requests: IncomingMessage[];
}

const servers: Server[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

/** A real HTTP server on a loopback port chosen by the OS. */
async function serve(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<TestServer> {
  const requests: IncomingMessage[] = [];
  const server = createServer((request, response) => {
    requests.push(request);
    handler(request, response);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests };
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  response.end(JSON.stringify(body));
}

/** Speaks Ollama's /api/version and /api/tags as Ollama 0.12 does; anything else is Go's plain-text 404. */
function ollamaHandler(request: IncomingMessage, response: ServerResponse): void {
  if (request.method === "GET" && request.url === "/api/version") {
    json(response, 200, { version: "0.12.6" });
  } else if (request.method === "GET" && request.url === "/api/tags") {
    json(response, 200, {
      models: [
        {
          name: "llama3.2:1b",
          model: "llama3.2:1b",
          modified_at: "2025-10-01T12:00:00.000000000Z",
          size: 1_321_098_329,
          digest: "baf6a787fdffd633537aa2eb51cfd54cb93ff08e28040095462bb63daf552878",
          details: {
            parent_model: "",
            format: "gguf",
            family: "llama",
            families: ["llama"],
            parameter_size: "1.2B",
            quantization_level: "Q8_0",
          },
        },
        {
          name: "qwen2.5:0.5b",
          model: "qwen2.5:0.5b",
          modified_at: "2025-09-12T08:30:00.000000000Z",
          size: 397_821_319,
          digest: "a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67",
          details: {
            parent_model: "",
            format: "gguf",
            family: "qwen2",
            families: ["qwen2"],
            parameter_size: "494.03M",
            quantization_level: "Q4_K_M",
          },
        },
      ],
    });
  } else {
    response.writeHead(404, { "content-type": "text/plain" });
    response.end("404 page not found");
  }
}

/** Speaks the OpenAI /v1/models list as vLLM does. */
function openaiHandler(models: string[]) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    if (request.method === "GET" && request.url === "/v1/models") {
      json(response, 200, {
        object: "list",
        data: models.map((id) => ({
          id,
          object: "model",
          created: 1_760_000_000,
          owned_by: "vllm",
          root: id,
        })),
      });
    } else {
      json(response, 404, { error: { message: "Not Found", type: "NotFoundError", code: 404 } });
    }
  };
}

/** A loopback port that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function expectValid(detected: DetectedBackend[]): void {
  for (const entry of detected) expect(detectedBackendSchema.parse(entry)).toEqual(entry);
}

describe("detectBackends", () => {
  it("finds Ollama and an OpenAI-compatible server with their models", async () => {
    const ollama = await serve(ollamaHandler);
    const vllm = await serve(openaiHandler(["Qwen/Qwen2.5-0.5B-Instruct"]));
    const detected = await detectBackends({
      ollamaUrl: ollama.url,
      openaiCandidates: [{ name: "vLLM", url: `${vllm.url}/v1` }],
      timeoutMs: 5_000,
    });
    expectValid(detected);
    expect(detected).toEqual([
      { kind: "embedded", name: "embedded llama.cpp", available: true, models: [] },
      {
        kind: "ollama",
        name: "Ollama",
        url: ollama.url,
        available: true,
        version: "0.12.6",
        models: ["llama3.2:1b", "qwen2.5:0.5b"],
        latencyMs: expect.any(Number),
      },
      {
        kind: "openai",
        name: "vLLM",
        url: `${vllm.url}/v1`,
        available: true,
        models: ["Qwen/Qwen2.5-0.5B-Instruct"],
        latencyMs: expect.any(Number),
      },
    ]);
    expect(ollama.requests.map((request) => request.url).sort()).toEqual(["/api/tags", "/api/version"]);
    expect(vllm.requests.map((request) => `${request.method} ${request.url}`)).toEqual(["GET /v1/models"]);
  });

  it("never sends the user's OPENAI_API_KEY to a local server", async () => {
    vi.stubEnv("OPENAI_API_KEY", "sk-user-secret");
    const server = await serve(openaiHandler([]));
    const [, , found] = await detectBackends({
      ollamaUrl: `http://127.0.0.1:${await closedPort()}`,
      openaiCandidates: [{ name: "LM Studio", url: `${server.url}/v1` }],
      timeoutMs: 5_000,
    });
    expect(found).toMatchObject({ available: true, models: [] });
    expect(server.requests[0]?.headers.authorization).not.toContain("sk-user-secret");
  });

  it("reports a closed port as unavailable with the reason", async () => {
    const port = await closedPort();
    const detected = await detectBackends({
      ollamaUrl: `http://127.0.0.1:${port}`,
      openaiCandidates: [{ name: "SGLang", url: `http://127.0.0.1:${port}/v1` }],
      timeoutMs: 5_000,
    });
    expectValid(detected);
    expect(detected.slice(1)).toEqual([
      expect.objectContaining({
        kind: "ollama",
        available: false,
        models: [],
        error: expect.stringMatching(/refused/),
      }),
      expect.objectContaining({
        kind: "openai",
        available: false,
        models: [],
        error: expect.stringMatching(/refused/),
      }),
    ]);
  });

  it("gives up on a server that never answers after timeoutMs", { timeout: 5_000 }, async () => {
    const silent = await serve(() => {
      // accept the request, never respond
    });
    const detected = await detectBackends({
      ollamaUrl: silent.url,
      openaiCandidates: [{ name: "llama.cpp server", url: `${silent.url}/v1` }],
      timeoutMs: 200,
    });
    expectValid(detected);
    expect(detected.slice(1)).toEqual([
      expect.objectContaining({ kind: "ollama", available: false, error: "timed out after 200 ms" }),
      expect.objectContaining({ kind: "openai", available: false, error: "timed out after 200 ms" }),
    ]);
    expect(silent.requests.length).toBeGreaterThan(0);
  });

  it("does not mistake another HTTP server for a backend, and keeps stdout clean", async () => {
    const log = vi.spyOn(console, "log");
    const other = await serve((_request, response) => {
      response.writeHead(404, { "content-type": "text/html" });
      response.end("<h1>Not here</h1>");
    });
    const detected = await detectBackends({
      ollamaUrl: other.url,
      openaiCandidates: [{ name: "vLLM", url: `${other.url}/v1` }],
      timeoutMs: 5_000,
    });
    expectValid(detected);
    expect(detected.slice(1)).toEqual([
      expect.objectContaining({
        kind: "ollama",
        available: false,
        error: expect.stringMatching(/^HTTP 404/),
      }),
      expect.objectContaining({
        kind: "openai",
        available: false,
        error: expect.stringMatching(/^HTTP 404/),
      }),
    ]);
    expect(log).not.toHaveBeenCalled();
  });

  it("rejects an answer that is not Ollama's", async () => {
    const impostor = await serve((_request, response) => json(response, 200, { hello: "world" }));
    const [, ollama] = await detectBackends({
      ollamaUrl: impostor.url,
      openaiCandidates: [],
      timeoutMs: 5_000,
    });
    expect(ollama).toMatchObject({ available: false, error: expect.stringMatching(/not an Ollama server/) });
  });

  it("probes the usual ports by default and never throws", async () => {
    const detected = await detectBackends({ timeoutMs: 500 });
    expectValid(detected);
    expect(detected.map((entry) => entry.url)).toEqual([
      undefined,
      "http://127.0.0.1:11434",
      "http://127.0.0.1:8000/v1",
      "http://127.0.0.1:8080/v1",
      "http://127.0.0.1:1234/v1",
      "http://127.0.0.1:30000/v1",
    ]);
    expect(detected[0]).toMatchObject({ kind: "embedded", available: true });
    for (const entry of detected.slice(1))
      expect(entry.available || typeof entry.error === "string").toBe(true);
  });

  it("reports a malformed candidate URL without probing it", async () => {
    const detected = await detectBackends({
      ollamaUrl: "ftp://127.0.0.1:11434",
      openaiCandidates: [{ name: "odd", url: "not a url" }],
    });
    expectValid(detected);
    expect(detected.slice(1)).toEqual([
      {
        kind: "ollama",
        name: "Ollama",
        available: false,
        models: [],
        error: expect.stringMatching(/not an http/),
      },
      {
        kind: "openai",
        name: "odd",
        available: false,
        models: [],
        error: expect.stringMatching(/not an http/),
      },
    ]);
  });
});

const embedded: DetectedBackend = {
  kind: "embedded",
  name: "embedded llama.cpp",
  available: true,
  models: [],
};
const ollamaUp: DetectedBackend = {
  kind: "ollama",
  name: "Ollama",
  url: "http://127.0.0.1:11434",
  available: true,
  version: "0.12.6",
  models: ["llama3.2:1b"],
  latencyMs: 3,
};
const ollamaDown: DetectedBackend = {
  kind: "ollama",
  name: "Ollama",
  url: "http://127.0.0.1:11434",
  available: false,
  models: [],
  error: "connection refused: nothing listens there (ECONNREFUSED)",
};
const vllmDown: DetectedBackend = {
  kind: "openai",
  name: "vLLM",
  url: "http://127.0.0.1:8000/v1",
  available: false,
  models: [],
  error: "connection refused: nothing listens there (ECONNREFUSED)",
};
const lmStudioUp: DetectedBackend = {
  kind: "openai",
  name: "LM Studio",
  url: "http://127.0.0.1:1234/v1",
  available: true,
  models: ["qwen2.5-7b-instruct"],
  latencyMs: 4,
};

describe("resolveBackendChoice", () => {
  it("picks embedded when nothing is asked for, and names what else was found", () => {
    const resolution = resolveBackendChoice({ detected: [embedded, ollamaUp, vllmDown, lmStudioUp] });
    expect(resolution.choice).toEqual({ kind: "embedded" });
    expect(resolution.alternatives).toEqual([ollamaUp, lmStudioUp]);
    expect(resolution.reason).toContain("Ollama at http://127.0.0.1:11434");
    expect(resolution.reason).toContain("LM Studio at http://127.0.0.1:1234/v1");
    expect(resolution.warnings).toEqual([]);
    expect(resolveBackendChoice({ backend: "auto", detected: [embedded, ollamaDown] })).toMatchObject({
      choice: { kind: "embedded" },
      alternatives: [],
    });
  });

  it("lets an explicit --backend win, with the detected URL", () => {
    expect(
      resolveBackendChoice({ backend: "ollama", detected: [embedded, ollamaUp, lmStudioUp] }),
    ).toMatchObject({
      choice: { kind: "ollama", url: "http://127.0.0.1:11434" },
      alternatives: [lmStudioUp],
      warnings: [],
    });
    // The OpenAI-compatible server that answered, not the first on the list.
    expect(
      resolveBackendChoice({ backend: "openai", detected: [embedded, vllmDown, lmStudioUp] }).choice,
    ).toEqual({
      kind: "openai",
      url: "http://127.0.0.1:1234/v1",
    });
    expect(resolveBackendChoice({ backend: "embedded", detected: [embedded, ollamaUp] })).toMatchObject({
      choice: { kind: "embedded" },
      alternatives: [ollamaUp],
    });
  });

  it("keeps an explicit choice that did not answer, with a warning", () => {
    const resolution = resolveBackendChoice({ backend: "ollama", detected: [embedded, ollamaDown] });
    expect(resolution.choice).toEqual({ kind: "ollama", url: "http://127.0.0.1:11434" });
    expect(resolution.warnings).toEqual([expect.stringContaining("did not answer (connection refused")]);
    expect(resolveBackendChoice({ backend: "openai", detected: [] }).choice).toEqual({
      kind: "openai",
      url: "http://127.0.0.1:8000/v1",
    });
  });

  it("uses --backend-url as given", () => {
    const resolution = resolveBackendChoice({
      backend: "openai",
      backendUrl: "https://gpu-box.lan:8443/v1/",
      detected: [embedded, lmStudioUp],
    });
    expect(resolution.choice).toEqual({ kind: "openai", url: "https://gpu-box.lan:8443/v1" });
    expect(resolution.alternatives).toEqual([lmStudioUp]);
    expect(resolution.warnings).toEqual([expect.stringContaining("not probed")]);
    expect(backendChoiceSchema.parse(resolution.choice)).toEqual(resolution.choice);
  });

  it("refuses a --backend-url that is not http(s)", () => {
    for (const backendUrl of [
      "ftp://127.0.0.1:11434",
      "127.0.0.1:11434",
      "javascript:alert(1)",
      "file:///etc/passwd",
    ]) {
      let thrown: unknown;
      try {
        resolveBackendChoice({ backend: "ollama", backendUrl, detected: [] });
      } catch (error) {
        thrown = error;
      }
      expect(isGbtError(thrown, "INVALID_INPUT"), backendUrl).toBe(true);
      expect((thrown as { exitCode: number }).exitCode).toBe(6);
    }
  });

  it("refuses --backend-url without --backend ollama|openai", () => {
    expect(() => resolveBackendChoice({ backendUrl: "http://127.0.0.1:11434", detected: [] })).toThrow(
      expect.objectContaining({ code: "USAGE" }),
    );
    expect(() =>
      resolveBackendChoice({ backend: "embedded", backendUrl: "http://127.0.0.1:11434", detected: [] }),
    ).toThrow(expect.objectContaining({ code: "USAGE" }));
  });
});

describe("backendChoiceSchema", () => {
  it("requires a url for servers and none for embedded", () => {
    expect(backendChoiceSchema.safeParse({ kind: "embedded" }).success).toBe(true);
    expect(backendChoiceSchema.safeParse({ kind: "ollama", url: "http://127.0.0.1:11434" }).success).toBe(
      true,
    );
    expect(backendChoiceSchema.safeParse({ kind: "ollama" }).success).toBe(false);
    expect(backendChoiceSchema.safeParse({ kind: "embedded", url: "http://127.0.0.1:11434" }).success).toBe(
      false,
    );
    expect(backendChoiceSchema.safeParse({ kind: "openai", url: "file:///tmp/x" }).success).toBe(false);
    expect(backendChoiceSchema.safeParse({ kind: "openai", url: "http://x/v1", extra: 1 }).success).toBe(
      false,
    );
  });
});
