/**
 * The viem client shapes the actions take. One client does both reads and writes (viem's actions
 * accept any client), so an action needs one dependency, not a wallet and a public client.
 */
import type { Account, Chain, Client, Transport } from "viem";

/** A client that can read; any transport, any chain. */
export type ChainReader = Client<Transport, Chain | undefined, Account | undefined>;

/** A client with an account to sign and a chain to send on. */
export type ChainWriter = Client<Transport, Chain, Account>;
