/**
 * Request ids of proxied completions (`gw-` and 12 random bytes in base64url), drawn from a pool of
 * random bytes so that most requests make no RNG call.
 */
import { randomBytes } from "node:crypto";

const ID_BYTES = 12;
let idPool = Buffer.alloc(0);
let idOffset = 0;

export function newRequestId(): string {
  if (idOffset + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 256);
    idOffset = 0;
  }
  const id = idPool.toString("base64url", idOffset, idOffset + ID_BYTES);
  idOffset += ID_BYTES;
  return `gw-${id}`;
}
