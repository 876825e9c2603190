/**
 * @gbt/contracts: Solidity contracts (token, staking, settlement, model registry) with typed
 * bindings and chain actions. Not built yet: see issue 9.
 */
export const contractsPackage = "@gbt/contracts" as const;
