/**
 * The gateway addresses a node pinned on first use, per gateway URL (`gateway-pins.json` in the
 * config dir, 0600, atomic writes): an outbound link to a URL whose gateway later signs with
 * another key is refused, as SSH refuses a changed host key. `--gateway-address` (config
 * `link.gatewayAddress`) gives the address instead and is never overwritten by a pin.
 */
import { join } from "node:path";
import { schemas } from "@gbt/protocol";
import { type GbtPaths, readJsonFile, writeJsonFile } from "@gbt/store";
import type { Address } from "viem";
import { z } from "zod";
import type { GatewayPin } from "./outbound-link.js";

const pinsSchema = z.strictObject({
  version: z.literal(1),
  gateways: z.record(z.string().max(512), schemas.address),
});

export function gatewayPinsFile(paths: GbtPaths): string {
  return join(paths.configDir, "gateway-pins.json");
}

/** The pin of one gateway URL, backed by the pins file; `expected` wins when given. */
export function gatewayPin(paths: GbtPaths, gatewayUrl: string, expected?: Address): GatewayPin {
  const file = gatewayPinsFile(paths);
  const key = gatewayUrl.replace(/\/+$/, "");
  const read = async () =>
    (await readJsonFile(file, pinsSchema, {
      what: "The gateway pins file",
      hint: `Fix or remove ${file}: the node pins each gateway's address again on its next link.`,
    })) ?? { version: 1 as const, gateways: {} };
  return {
    ...(expected !== undefined ? { expected } : {}),
    async load() {
      return ((await read()).gateways[key] as Address | undefined) ?? null;
    },
    async save(address) {
      const pins = await read();
      await writeJsonFile(file, { version: 1, gateways: { ...pins.gateways, [key]: address } });
    },
  };
}
