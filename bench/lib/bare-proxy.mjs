// The floor of any pass-through: a bare node:http proxy (keep-alive upstream, body read whole,
// answer piped) in its own process, forwarding POST /v1/chat/completions to `<base>/chat/completions`.
// bench/relay-overhead.mjs measures it beside `gbt serve` so the gap is gbt's own cost.
//   node bench/lib/bare-proxy.mjs http://127.0.0.1:PORT/v1   → prints {"url": …}
import { Agent, createServer, request } from "node:http";

const target = new URL(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const upstream = request(
      {
        hostname: target.hostname,
        port: target.port,
        path: `${target.pathname}/chat/completions`,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    upstream.end(body);
  });
});
server.listen(0, "127.0.0.1", () =>
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })),
);
