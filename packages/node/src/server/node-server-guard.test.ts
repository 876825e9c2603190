/**
 * The node's own door: the socket limits of protocol's guardServer on the node's server (a
 * slowloris, idle sockets and one address's pile of connections are closed; everyone else is
 * served meanwhile). The gateway's server has the same guard (gateway's door.test.ts).
 */
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import pino from "pino";
import { afterEach, expect, it } from "vitest";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { type NodeServer, startNodeServer } from "./node-server.js";

let server: NodeServer | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await server?.close();
});

it("closes a slowloris, idle sockets and the connections over the per-address cap, and serves another address meanwhile", async () => {
  server = await startNodeServer({
    backend: createScriptedBackend(),
    logger: pino({ level: "silent" }),
    capacity: 2,
    guard: { headersTimeoutMs: 500, idleTimeoutMs: 500, maxConnectionsPerIp: 100 },
  });
  const { port } = new URL(server.url);
  const open = (slow: boolean) =>
    new Promise<void>((resolve) => {
      const socket = connect({ port: Number(port), host: "127.0.0.1", localAddress: "127.0.0.1" }, () => {
        if (slow) socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
        resolve();
      });
      socket.on("error", () => resolve());
      sockets.push(socket);
    });
  for (let i = 0; i < 300; i++) await open(i < 20);
  const dribble = setInterval(() => {
    for (const socket of sockets.slice(0, 20)) if (!socket.destroyed) socket.write("x-a: b\r\n");
  }, 100);
  try {
    const agent = new Agent({ localAddress: "127.0.0.2" } as never);
    const status = await new Promise<number>((resolve, reject) => {
      request(`${server?.url}/healthz`, { agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      })
        .on("error", reject)
        .end();
    });
    expect(status).toBe(200);
    agent.destroy();
    await expect
      .poll(() => sockets.filter((socket) => socket.destroyed || socket.closed).length, { timeout: 10_000 })
      .toBe(300);
  } finally {
    clearInterval(dribble);
  }
});
