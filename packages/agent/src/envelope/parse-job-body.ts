/**
 * The first gate of a job arriving over the wire: a size limit before parsing, then JSON.
 * Everything after this works on a plain value.
 */
import { GbtError, MAX_JOB_BODY_BYTES } from "@gbt/protocol";

/** Parses a received job body; INVALID_INPUT when over `maxBytes`, INVALID_OBJECT when not JSON. */
export function parseJobBody(raw: Buffer | string, maxBytes: number = MAX_JOB_BODY_BYTES): unknown {
  const size = typeof raw === "string" ? Buffer.byteLength(raw, "utf8") : raw.length;
  if (size > maxBytes) {
    throw new GbtError("INVALID_INPUT", `The job body is ${size} bytes, over the ${maxBytes}-byte limit.`, {
      details: { size, maxBytes },
      hint: "Send a smaller job: parameters are small by design; large data is fetched by the job, not carried.",
    });
  }
  const text = typeof raw === "string" ? raw : raw.toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new GbtError("INVALID_OBJECT", "The job body is not JSON.", {
      cause,
      hint: "Send the signed Job object as a JSON document (Content-Type: application/json).",
    });
  }
}
