/** Where the gbt contracts live on one chain: the document `deployAll` returns and config files hold. */
import { getAddress } from "viem";
import { z } from "zod";

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte address")
  .transform((value) => getAddress(value));

export const gbtDeploymentSchema = z.strictObject({
  chainId: z.number().int().positive(),
  token: address,
  staking: address,
  settlement: address,
  registry: address,
  teamVesting: address,
  /** The block of the first deployment transaction (where event scans start). */
  deployBlock: z.number().int().min(0),
});
export type GbtDeployment = z.output<typeof gbtDeploymentSchema>;
