// The benchmark's peer for the web gateway (tools/bench/web_rows.ts): the minimal broadcast
// server a Node user would write with the ws package. Every binary message is sent to every
// client, the sender included. Prints "listening on 127.0.0.1:PORT" to stderr once it listens.
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 0);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
// On stderr, where the bench harness (ServerProcess) reads a server's log.
wss.on("listening", () => console.error(`listening on 127.0.0.1:${wss.address().port}`));
wss.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === 1) client.send(data, { binary: isBinary });
    }
  });
});
