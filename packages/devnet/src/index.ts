/**
 * @gbt/devnet: a whole local network as one service. `gbt up` (a gateway and N nodes on loopback,
 * each set up like `gbt setup --yes` on the embedded backend, optionally on a dev chain where the
 * gateway settles epochs and every node is funded and staked) and `gbt chain dev` (anvil with the
 * gbt contracts deployed and funded).
 */

export {
  DEV_NODE_GBT,
  type DevChain,
  type StartDevChainParameters,
  startDevChain,
  writeGatewaySettlement,
} from "./dev-chain.js";
export { LOCAL_NODE_STAKE, type LocalChain, startLocalChain } from "./local-chain.js";
export {
  type LocalNetwork,
  type LocalNetworkParameters,
  sendFirstRequest,
  startLocalNetwork,
} from "./local-network.js";
