/**
 * @gbt/gateway: placeholder until its issue lands (see README.md in this package).
 */
export const packageName = "@gbt/gateway" as const;
