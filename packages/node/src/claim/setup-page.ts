/**
 * The setup page of an unclaimed node (`GET /setup`): one self-contained HTML document, no
 * external assets. It shows the node address, the claim code, the hardware scan and the command
 * to run, and takes a pasted signed claim. Everything from state is escaped on the server; the
 * one inline script runs under a per-response CSP nonce and writes only with textContent.
 */
import { randomBytes } from "node:crypto";
import type { SetupInfo } from "./setup-controller.js";

/** The page's headers: a strict CSP (its own nonce), no framing, no caching, no referrer. */
export function setupPageHeaders(nonce: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      "style-src 'unsafe-inline'",
      "connect-src 'self'",
      "img-src 'none'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
  };
}

export function newNonce(): string {
  return randomBytes(16).toString("base64");
}

const escapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text made safe for HTML content and quoted attributes. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => escapes[c] ?? c);
}

/** One line of text for a value of the scan, bounded. */
function textOf(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = "unknown";
  else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean")
    text = String(value);
  else if (Array.isArray(value)) text = value.length ? value.map((item) => textOf(item)).join("; ") : "none";
  else text = JSON.stringify(value) ?? "";
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** The scan as label/value rows: the summary's own keys, at most 24. */
function scanRows(hardware: unknown): Array<[string, string]> {
  if (hardware === null || typeof hardware !== "object" || Array.isArray(hardware)) {
    return [["Scan", textOf(hardware)]];
  }
  return Object.entries(hardware as Record<string, unknown>)
    .filter(([, value]) => !(Array.isArray(value) && value.length === 0))
    .slice(0, 24)
    .map(([key, value]) => [
      key.length <= 4 ? key.toUpperCase() : key[0]?.toUpperCase() + key.slice(1),
      textOf(value),
    ]);
}

export interface SetupPageOptions {
  /** The CSP nonce of this response. */
  nonce: string;
  /** Whether the code may be shown to this peer (loopback); otherwise it is on the node's console. */
  showCode: boolean;
}

/** The whole page for the node's current setup info. */
export function renderSetupPage(info: SetupInfo, options: SetupPageOptions): string {
  const code = info.code && options.showCode ? info.code : null;
  const codeText = info.claimed
    ? "none (claimed)"
    : (code ??
      "shown on the node's own console (gbt serve's output) and at http://127.0.0.1:PORT/setup on the node");
  const command = `gbt owner claim ${code ?? "CODE"} --key-file owner.key`;
  const printCommand = `${command} --print --node-address ${info.node} --chain-id ${info.chainId}`;
  const rows = scanRows(info.hardware)
    .map(([label, value]) => `<tr><th>${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`)
    .join("");
  const owners = info.owners.length ? info.owners.join(", ") : "none";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gbt node setup</title>
<style>
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b;background:#fafafa}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
code,pre,textarea{font-family:ui-monospace,monospace}
.code{font-size:2rem;letter-spacing:.15em;font-weight:700}
table{border-collapse:collapse}th{text-align:left;padding:.2rem 1rem .2rem 0;vertical-align:top}td{padding:.2rem 0}
pre{background:#eee;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
textarea{width:100%;min-height:10rem;box-sizing:border-box}
button{margin-top:.5rem;padding:.4rem 1.2rem;font-size:1rem}
#result{margin-top:.8rem;font-weight:600}.ok{color:#116611}.error{color:#aa1111}
</style>
</head>
<body>
<h1>gbt node setup</h1>
<table>
<tr><th>Node</th><td><code id="node">${escapeHtml(info.node)}</code></td></tr>
<tr><th>Chain</th><td id="chain">${escapeHtml(info.chainId)}</td></tr>
<tr><th>Status</th><td id="status">${info.claimed ? "claimed" : "unclaimed"}</td></tr>
<tr><th>Owners</th><td id="owners">${escapeHtml(owners)}</td></tr>
<tr><th>Claim code</th><td><span id="code" class="${code ? "code" : ""}">${escapeHtml(codeText)}</span></td></tr>
</table>
<h2>Hardware</h2>
<table id="hardware">${rows}</table>
<h2>Claim this node</h2>
<p>On the machine that holds your owner key, run:</p>
<pre id="command">${escapeHtml(command)}</pre>
<p>(add <code>--node http://HOST:PORT</code> when this node is not at http://127.0.0.1:8787), or sign a claim to paste here:</p>
<pre id="print-command">${escapeHtml(printCommand)}</pre>
<label for="claim">Signed claim (JSON)</label>
<textarea id="claim" spellcheck="false" autocomplete="off"></textarea>
<button id="submit" type="button">Claim</button>
<div id="result" role="status" aria-live="polite"></div>
<script nonce="${escapeHtml(options.nonce)}">
(function () {
  var button = document.getElementById("submit");
  var result = document.getElementById("result");
  function say(text, ok) { result.textContent = text; result.className = ok ? "ok" : "error"; }
  button.addEventListener("click", function () {
    var body = document.getElementById("claim").value.trim();
    if (!body) { say("Paste the signed claim first.", false); return; }
    button.disabled = true;
    say("Claiming…", true);
    fetch("/setup/claim", { method: "POST", headers: { "content-type": "application/json" }, body: body, credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) { return { response: response, answer: answer }; });
      })
      .then(function (r) {
        if (r.response.ok && r.answer && r.answer.owner) {
          say("Claimed: this node now belongs to " + r.answer.owner + ".", true);
          document.getElementById("status").textContent = "claimed";
          document.getElementById("owners").textContent = r.answer.owner;
          document.getElementById("code").textContent = "none (claimed)";
          document.getElementById("code").className = "";
        } else {
          var error = r.answer && r.answer.error;
          say("Refused: " + (error && error.message ? error.message : "HTTP " + r.response.status) + (error && error.code ? " (" + error.code + ")" : ""), false);
          button.disabled = false;
        }
      })
      .catch(function (e) { say("Could not reach the node: " + e, false); button.disabled = false; });
  });
})();
</script>
</body>
</html>
`;
}
