/**
 * @gbt/agent: placeholder until its issue lands (see README.md in this package).
 */
export const packageName = "@gbt/agent" as const;
