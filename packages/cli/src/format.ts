/** Human renderings of results: aligned label/value tables for the terminal. */

/** Renders `[label, value]` rows with aligned labels. */
export function labelTable(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join("\n");
}

export function formatBytes(mb: number | null | undefined, unit: "MB" | "GB" = "GB"): string {
  if (mb === null || mb === undefined) return "unknown";
  return unit === "GB" ? `${(mb / 1024).toFixed(1)} GB` : `${Math.round(mb)} MB`;
}

export interface TableOptions {
  /** Per column; default "left". Numbers read best right-aligned. */
  align?: ReadonlyArray<"left" | "right">;
  /** Put before every line (default none). */
  indent?: string;
  /** Drop trailing spaces of each line (default true). */
  trimEnd?: boolean;
}

/** Renders a table with a header row, columns padded to their widest cell. */
export function renderTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  options: TableOptions = {},
): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)));
  const line = (row: readonly string[]) => {
    const text = `${options.indent ?? ""}${row
      .map((cell, i) =>
        options.align?.[i] === "right" ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join("  ")}`;
    return options.trimEnd === false ? text : text.trimEnd();
  };
  return all.map(line).join("\n");
}
