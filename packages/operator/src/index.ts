/**
 * @gbt/operator: placeholder until its issue lands (see README.md in this package).
 */
export const packageName = "@gbt/operator" as const;
