/**
 * The settlement worker: writes batches of parsed settlements on its own better-sqlite3
 * connection to the gateway's WAL file, off the main thread. It answers each batch on the
 * transferred port, then counts it in the shared signal (so that `SettlementQueue.flushSync`
 * can wait for it with Atomics.wait and read the answer with receiveMessageOnPort).
 */
import { type MessagePort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import {
  type FromWorker,
  type SettlementWorkerData,
  SettlementWriter,
  type ToWorker,
  toWireError,
} from "./settlement-writer.js";

const { path, signal, port } = workerData as SettlementWorkerData & { port: MessagePort };
const answered = new Int32Array(signal);
const db = new Database(path);
db.pragma("synchronous = NORMAL");
db.pragma("foreign_keys = ON");
db.pragma("busy_timeout = 5000");
const writer = new SettlementWriter(db);
// The queue closed its end (or went away): nothing more will come.
port.once("close", () => {
  if (db.open) db.close();
});

port.on("message", (message: ToWorker) => {
  if (message.type === "close") {
    if (db.open) db.close();
    port.close();
    return;
  }
  let outcomes: FromWorker["outcomes"];
  try {
    outcomes = writer
      .writeBatch(message.settlements)
      .map((outcome) =>
        outcome.ok
          ? { ok: true, settled: outcome.settled }
          : { ok: false, error: toWireError(outcome.error) },
      );
  } catch (error) {
    const wire = toWireError(error);
    outcomes = message.settlements.map(() => ({ ok: false, error: wire }));
  }
  port.postMessage({ id: message.id, outcomes } satisfies FromWorker);
  Atomics.add(answered, 0, 1);
  Atomics.notify(answered, 0);
});
