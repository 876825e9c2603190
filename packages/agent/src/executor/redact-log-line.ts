/**
 * logs.tail hands node logs to whoever signed the job, and from there to an Operator transcript
 * or a CI log: every line is redacted and clipped here, in the agent, whatever the log writer did.
 * Redaction is by shape (API keys, bearer tokens, key material) and by field name (anything called
 * a secret, token, password, passphrase or key), so a secret logged by a library we don't control
 * is caught too.
 */

/** Longest line handed out; longer ones are cut and marked. */
export const MAX_LOG_LINE_CHARS = 2_000;

const REDACTED = "[REDACTED]";

/** Values whose shape alone says they are secrets. */
const secretShapes: readonly RegExp[] = [
  // gbt API keys: gateway (gbt_gk_…), node-local and link tokens.
  /\bgbt_[a-z]{1,8}_[A-Za-z0-9_-]{16,}/g,
  // OpenAI-style and other vendor keys.
  /\bsk-[A-Za-z0-9_-]{16,}/g,
  // Bearer credentials in headers or messages.
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  // PEM private keys.
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g,
];

/** JSON fields (and key=value pairs) whose name says the value is secret. */
// The name must END with the secret word: `linkToken` and `api_key` are secrets, `maxTokens` and
// `tokenizer` are not.
const secretName =
  "(?:[A-Za-z_-]*(?:password|passphrase|passwd|secret|token|private_?key|privkey|api_?key|mnemonic|seed_?phrase|authorization|cookie|credentials?)(?![A-Za-z]))";
const jsonSecretField = new RegExp(`("${secretName}"\\s*:\\s*)("(?:[^"\\\\]|\\\\.)*"|[^,}\\]\\s]+)`, "gi");
// An auth scheme belongs to its credential: "Authorization: Basic xyz" loses both words.
const assignmentSecret = new RegExp(
  `\\b(${secretName}\\s*[=:]\\s*)((?:(?:Bearer|Basic|Token|Digest)\\s+)?[^\\s,;&"']+)`,
  "gi",
);

/** Control characters other than tab: a log line must not drive the reader's terminal. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point.
const controlCharacters = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export interface RedactedLine {
  text: string;
  /** How many secrets were replaced. */
  redactions: number;
  truncated: boolean;
}

/** Redacts secrets from one log line, strips control characters and clips it. */
export function redactLogLine(line: string, maxChars = MAX_LOG_LINE_CHARS): RedactedLine {
  let redactions = 0;
  let text = line.replace(controlCharacters, "");
  text = text.replace(jsonSecretField, (_match, name: string) => {
    redactions += 1;
    return `${name}"${REDACTED}"`;
  });
  text = text.replace(assignmentSecret, (match, name: string, value: string) => {
    if (value === REDACTED || value === `"${REDACTED}"`) return match;
    redactions += 1;
    return `${name}${REDACTED}`;
  });
  for (const shape of secretShapes) {
    text = text.replace(shape, (match) => {
      if (match.includes(REDACTED)) return match;
      redactions += 1;
      return REDACTED;
    });
  }
  const truncated = text.length > maxChars;
  if (truncated) text = `${text.slice(0, maxChars)}… [truncated]`;
  return { text, redactions, truncated };
}
