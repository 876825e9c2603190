/**
 * String schemas for job parameters that may reach a shell, a file path or a backend's API. Each
 * rejection names its reason (control characters, shell metacharacters, path traversal, length) so
 * the issuer sees exactly what to change; nothing is ever quoted or escaped instead.
 */
import { z } from "zod";
import { boundedText, hasControlCharacters } from "../../primitives.js";

export const MAX_MODEL_NAME_LENGTH = 200;

const SHELL_METACHARACTERS = /[;&|$`<>(){}[\]*?!~'"\\]/;
const WHITESPACE = /\s/;
const SAFE_CHARACTERS = /^[A-Za-z0-9._:/@+-]+$/;

/** A model name such as `llama3.1:8b` or `hf.co/org/model@sha256:…`: safe as an argument and a path segment. */
export const modelName = z
  .string()
  .min(1, "must not be empty")
  .max(MAX_MODEL_NAME_LENGTH, `must be at most ${MAX_MODEL_NAME_LENGTH} characters`)
  .superRefine((value, ctx) => {
    const reason = unsafeIdentifierReason(value);
    if (reason) ctx.addIssue({ code: "custom", message: reason });
  });

/** Why `value` is not a safe identifier, or undefined when it is. */
export function unsafeIdentifierReason(value: string): string | undefined {
  if (hasControlCharacters(value)) return "must not contain control characters";
  if (SHELL_METACHARACTERS.test(value)) return "must not contain shell metacharacters";
  if (WHITESPACE.test(value)) return "must not contain whitespace";
  if (value.includes("..")) return "must not contain '..' (path traversal)";
  if (value.startsWith("/") || value.startsWith("-")) return "must not start with '/' or '-'";
  if (!SAFE_CHARACTERS.test(value)) return "must be letters, digits and . _ : / @ + -";
  return undefined;
}

/** Free text an operator reads (a drain reason): bounded, printable, one line. */
export function operatorNote(max: number) {
  return boundedText(max);
}
