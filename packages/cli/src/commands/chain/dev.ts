import { isAbsolute } from "node:path";
import { chainConfigPath, writeChainConfig } from "@gbt/contracts";
import { DEV_NODE_GBT, startDevChain, writeGatewaySettlement } from "@gbt/devnet";
import { ensureGatewaySecrets } from "@gbt/gateway";
import { resolvePaths } from "@gbt/node";
import { GbtError, readKeystore } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import type { Address } from "viem";
import { formatGbt } from "../../chain-amount.js";
import { labelTable } from "../../format.js";
import { gatewayPathFlags, gatewayPaths } from "../../gateway-paths.js";
import { GbtCommand } from "../../gbt-command.js";
import { runUntilSignal } from "../../wait-for-signal.js";

export default class ChainDev extends GbtCommand {
  static override summary = "Run a local dev chain (anvil) with every gbt contract deployed.";

  static override description =
    `Starts anvil on 127.0.0.1:8545 (or --port), deploys the GBT token (1,000,000,000: 40% rewards pool, 30% treasury, 20% team vesting, 10% airdrop), NodeStaking, Settlement (funded with the whole rewards pool) and ModelRegistry from anvil's first dev account, and makes the gateway key of this gbt home the settler (or the key of --settler-key-file, kept apart from the gateway's link key). Settlement roots take effect after --root-delay seconds (0 here, so a dev loop claims at once; a real deployment waits a day by default).

The node key (if \`gbt setup\` ran) gets ${formatGbt(DEV_NODE_GBT)} and ETH for gas, the gateway key ETH for gas. The addresses go to chain.json in the config dir (read by \`gbt stake\` and \`gbt payout\`) and the settlement section of gateway.json (so \`gbt gateway serve\` posts epoch roots). The chain lives in memory: it stays up until Ctrl-C and is gone afterwards.`;

  static override examples = [
    { description: "Start it", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "A free port, 60-second unbonding and epochs, as JSON",
      command: "<%= config.bin %> <%= command.id %> --port 0 --unbonding-delay 60 --epoch 60 --json",
    },
  ];

  static override flags = {
    port: Flags.integer({
      description: "RPC port (0 picks a free one).",
      default: 8545,
      min: 0,
      max: 65_535,
    }),
    "unbonding-delay": Flags.integer({
      description: "Seconds unbonded stake waits before withdrawal.",
      default: 7 * 86_400,
      min: 0,
    }),
    epoch: Flags.integer({
      description: "Seconds between the gateway's settlement epochs.",
      default: 3600,
      min: 1,
    }),
    "root-delay": Flags.integer({
      description: "Seconds a posted settlement root waits (cancellable by governance) before it pays.",
      default: 0,
      min: 0,
      max: 30 * 86_400,
    }),
    "settler-key-file": Flags.string({
      description:
        "A gbt keystore (absolute path) whose key gets the settler role instead of the gateway key; written to gateway.json as settlement.settlerKeyFile.",
    }),
    "gateway-url": Flags.string({
      description: "Gateway whose payout proofs `gbt payout` fetches (else gbt serve's).",
    }),
    ...gatewayPathFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ChainDev);
    const paths = resolvePaths();
    const gateway = gatewayPaths(flags);
    const secrets = await ensureGatewaySecrets(gateway.dataDir, {
      ...(process.env.GBT_GATEWAY_PASSPHRASE ? { passphrase: process.env.GBT_GATEWAY_PASSPHRASE } : {}),
    });
    const node = await readKeystore(paths.nodeKeystore).then(
      (keystore) => keystore.address as Address,
      () => undefined,
    );
    const settlerKeyFile = flags["settler-key-file"];
    if (settlerKeyFile !== undefined && !isAbsolute(settlerKeyFile)) {
      throw new GbtError("USAGE", `--settler-key-file must be an absolute path, not ${settlerKeyFile}.`, {
        hint: "gateway.json keeps the path as given, and the gateway may run from another directory.",
      });
    }
    const settler = settlerKeyFile
      ? ((await readKeystore(settlerKeyFile)).address as Address)
      : secrets.account.address;
    this.note("gbt chain dev: starting anvil and deploying the gbt contracts");
    const chain = await startDevChain({
      port: flags.port,
      settler,
      fundGbt: node ? [node] : [],
      fundEth: [...new Set([secrets.account.address, settler])],
      unbondingDelaySeconds: BigInt(flags["unbonding-delay"]),
      rootDelaySeconds: BigInt(flags["root-delay"]),
    });
    const chainFile = chainConfigPath();
    await writeChainConfig(chainFile, {
      version: 1,
      rpcUrl: chain.rpcUrl,
      deployment: chain.deployment,
      ...(flags["gateway-url"] ? { gatewayUrl: flags["gateway-url"] } : {}),
    });
    await writeGatewaySettlement(gateway.configFile, {
      rpcUrl: chain.rpcUrl,
      chainId: chain.deployment.chainId,
      contract: chain.deployment.settlement,
      staking: chain.deployment.staking,
      epochSeconds: flags.epoch,
      ...(settlerKeyFile ? { settlerKeyFile } : {}),
    });
    const result = {
      event: "ready",
      rpcUrl: chain.rpcUrl,
      chainId: chain.deployment.chainId,
      contracts: {
        token: chain.deployment.token,
        staking: chain.deployment.staking,
        settlement: chain.deployment.settlement,
        registry: chain.deployment.registry,
        teamVesting: chain.deployment.teamVesting,
      },
      governance: chain.governance,
      settler,
      rootDelaySeconds: flags["root-delay"],
      node: node ?? null,
      chainConfig: chainFile,
      gatewayConfig: gateway.configFile,
    };
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      this.out(
        `${labelTable([
          ["RPC", chain.rpcUrl],
          ["Chain", String(chain.deployment.chainId)],
          ["GBT token", chain.deployment.token],
          ["NodeStaking", chain.deployment.staking],
          ["Settlement", chain.deployment.settlement],
          ["ModelRegistry", chain.deployment.registry],
          ["Settler", `${settler} (${settlerKeyFile ? settlerKeyFile : "gateway key"})`],
          ["Root delay", `${flags["root-delay"]} s`],
          [
            "Node key",
            node ? `${node} (funded ${formatGbt(DEV_NODE_GBT)})` : "none yet: run `gbt setup`, then restart",
          ],
        ])}\n\nWrote ${chainFile} and the settlement section of ${gateway.configFile}.\nNext: gbt gateway serve, gbt serve --gateway URL, gbt stake deposit 100\nCtrl-C stops the chain (its state is lost).`,
      );
    }
    await runUntilSignal(async () => {
      this.note("gbt chain dev: stopping");
      await chain.stop();
    });
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ event: "stopped" })}\n`);
  }
}
