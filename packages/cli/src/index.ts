/**
 * @gbt/cli: the oclif commands of `gbt`. Each command parses flags and calls one service.
 */
export { GbtCommand } from "./gbt-command.js";
