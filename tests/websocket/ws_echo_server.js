// A WebSocket-over-HTTP/2 echo server (RFC 8441) on Node's http2 module, for
// tests/websocket/websocket_hypercorn.sh: node's HTTP/2 stack (nghttp2 inside)
// announces SETTINGS_ENABLE_CONNECT_PROTOCOL and accepts extended CONNECT;
// the RFC 6455 framing is done here, strictly for what a client sends:
// frames must be masked, control frames short and unfragmented.
//
//   node ws_echo_server.js PORT [CERT KEY]
//
// Prints "listening" once it accepts connections. Each text or binary
// message comes back unmasked; a ping gets a pong; a Close is answered with
// a Close carrying the same code, and the stream ends once the client has
// ended its side. Any other request gets 200 "not a websocket".
'use strict';
const fs = require('fs');
const http2 = require('http2');

const [port, cert, key] = process.argv.slice(2);
const settings = {enableConnectProtocol: true};
const server = cert
    ? http2.createSecureServer(
          {cert: fs.readFileSync(cert), key: fs.readFileSync(key), settings})
    : http2.createServer({settings});

function frame(opcode, payload) {
  let head;
  if (payload.length < 126) {
    head = Buffer.from([0x80 | opcode, payload.length]);
  } else if (payload.length <= 0xffff) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([head, payload]);
}

server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({':status': 200, 'content-type': 'text/plain'});
    stream.end('not a websocket\n');
    return;
  }
  if (headers['sec-websocket-version'] !== '13') {
    stream.respond({':status': 400});
    stream.end();
    return;
  }
  stream.respond({':status': 200});
  let pending = Buffer.alloc(0);
  let parts = [];
  let messageOpcode = 0;
  let closeSent = false;
  const fail = () => stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
  stream.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const fin = (pending[0] & 0x80) !== 0;
      const opcode = pending[0] & 0x0f;
      if ((pending[1] & 0x80) === 0) return fail(); // RFC 6455 section 5.1
      let len = pending[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (pending.length < 4) return;
        len = pending.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (pending.length < 10) return;
        len = Number(pending.readBigUInt64BE(2));
        at = 10;
      }
      if (pending.length < at + 4 + len) return;
      const mask = pending.subarray(at, at + 4);
      const payload = Buffer.from(pending.subarray(at + 4, at + 4 + len));
      for (let i = 0; i < len; i++) payload[i] ^= mask[i % 4];
      pending = pending.subarray(at + 4 + len);
      if (opcode >= 8 && (!fin || len > 125)) return fail();
      if (opcode === 1 || opcode === 2) {
        messageOpcode = opcode;
        parts = [payload];
      } else if (opcode === 0) {
        parts.push(payload);
      } else if (opcode === 9) {
        stream.write(frame(10, payload));
        continue;
      } else if (opcode === 8) {
        if (!closeSent) {
          closeSent = true;
          stream.write(frame(8, payload.subarray(0, 2)));
        }
        continue;
      } else {
        continue; // pong
      }
      if (fin && !closeSent) {
        stream.write(frame(messageOpcode, Buffer.concat(parts)));
        parts = [];
      }
    }
  });
  // The client's END_STREAM (after the close handshake): end ours too.
  stream.on('end', () => stream.end());
  stream.on('error', () => {});
});

server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
