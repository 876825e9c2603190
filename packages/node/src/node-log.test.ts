import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNodeLogger, NODE_LOG_ROTATE_BYTES, nodeLogFile, tailLogFile } from "./node-log.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-node-log-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("node log file", () => {
  it("writes JSON lines to a 0600 file with secret fields redacted", () => {
    const file = nodeLogFile({ dataDir: dir });
    const logger = createNodeLogger({ level: "info", service: "gbt-node", file, stderr: false });
    logger.info({ linkToken: "tok-secret", req: { headers: { authorization: "Bearer abc" } } }, "registered");
    logger.debug("not at info level");
    const text = readFileSync(file, "utf8");
    expect(text).toContain('"msg":"registered"');
    expect(text).not.toContain("tok-secret");
    expect(text).not.toContain("Bearer abc");
    expect(text).not.toContain("not at info level");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "logs")).mode & 0o777).toBe(0o700);
  });

  it("keeps the file at info when the terminal is quieter", () => {
    const file = nodeLogFile({ dataDir: dir });
    const logger = createNodeLogger({ level: "warn", service: "s", file, stderr: false });
    logger.info("kept in the file");
    logger.debug("not kept");
    const text = readFileSync(file, "utf8");
    expect(text).toContain("kept in the file");
    expect(text).not.toContain("not kept");
  });

  it("rotates an oversized file at start", () => {
    const file = nodeLogFile({ dataDir: dir });
    createNodeLogger({ level: "info", service: "s", file, stderr: false });
    writeFileSync(file, "x".repeat(NODE_LOG_ROTATE_BYTES + 1));
    const logger = createNodeLogger({ level: "info", service: "s", file, stderr: false });
    logger.info("fresh");
    expect(statSync(`${file}.1`).size).toBe(NODE_LOG_ROTATE_BYTES + 1);
    expect(readFileSync(file, "utf8")).toContain("fresh");
  });

  it("tails the last complete lines within a byte window, and nothing for a missing file", () => {
    const file = join(dir, "t.log");
    writeFileSync(file, `${Array.from({ length: 100 }, (_, i) => `line-${i}`).join("\n")}\n`);
    expect(tailLogFile(file, 3)).toEqual(["line-97", "line-98", "line-99"]);
    // A 20-byte window starts mid-line: the partial line is dropped.
    expect(tailLogFile(file, 10, 20)).toEqual(["line-98", "line-99"]);
    expect(tailLogFile(join(dir, "missing.log"), 5)).toEqual([]);
  });
});
