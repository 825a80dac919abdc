// An AMQP 1.0 peer on loopback that stands in for Event Hubs well enough for
// the real azeventhubs v2 ProducerClient (UseDevelopmentEmulator=true), as
// described in docs/eventhubs-amqp-peer.md: echoed attaches with settle modes
// and max_message_size, $cbs put-token answered with int 202, batches of
// format 0x80013700 split into their events.
//
// It records every event it accepts and answers a control port:
//   GET  /events            [{id, partitionKey, body, bodyBase64}] in arrival order
//                           (body as UTF-8 text; bodyBase64 the bytes, for binary bodies)
//   GET  /stats             counters
//   POST /fault?busy=N      reject the next N batches with com.microsoft:server-busy
//   POST /fault?detach=N    detach the link on the next N batches, without storing them
//   POST /fault?lateDetach=N store the next N batches, then detach before settling
//   POST /down              close every connection and refuse new ones
//   POST /up                accept connections again
//   POST /reset             forget recorded events
//
// Environment: PORT (AMQP), CONTROL_PORT (HTTP), MAX_MESSAGE_SIZE (bytes).
'use strict';
const http = require('http');
const rhea = require('rhea');

const port = Number(process.env.PORT || 5672);
const controlPort = Number(process.env.CONTROL_PORT || 5673);
const maxMessageSize = Number(process.env.MAX_MESSAGE_SIZE || 1048576);
const BATCH_FORMAT = 0x80013700;

const state = { events: [], batches: 0, connections: 0, cbs: 0, busy: 0, detach: 0, lateDetach: 0, rejected: 0, detached: 0 };
const container = rhea.create_container({ id: 'eventhubs-standin', autoaccept: false });
let server = null;
const sockets = new Set();

function listen(cb) {
  server = container.listen({ port, host: '127.0.0.1' });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.on('listening', () => cb && cb());
  server.on('error', (e) => { console.error('listen:', e.message); process.exit(1); });
}

function down(cb) {
  if (!server) return cb();
  const s = server;
  server = null;
  s.close(() => cb());
  for (const sock of sockets) sock.destroy();
}

// Echo the client's terminus and settle modes on every attach.
function echo(link) {
  const remote = link.remote.attach;
  link.set_source(remote.source);
  link.set_target(remote.target);
  link.local.attach.snd_settle_mode = remote.snd_settle_mode;
  link.local.attach.rcv_settle_mode = remote.rcv_settle_mode;
}
container.on('connection_open', () => { state.connections++; });
container.on('sender_open', (ctx) => echo(ctx.sender));
container.on('receiver_open', (ctx) => {
  echo(ctx.receiver);
  ctx.receiver.local.attach.max_message_size = maxMessageSize;
});
container.on('error', (ctx) => console.error('amqp error:', ctx.error && ctx.error.message));
container.on('disconnected', () => {});

function text(v) { return v === undefined || v === null ? null : String(v); }

// decodeBatch returns the events in one delivery.
function decodeBatch(ctx) {
  let msgs;
  if (ctx.format === BATCH_FORMAT) {
    const outer = rhea.message.decode(ctx.message);
    const parts = outer.body.multiple ? outer.body.content : [outer.body.content];
    msgs = parts.map((b) => rhea.message.decode(b));
  } else {
    msgs = [ctx.message];
  }
  return msgs.map((m) => {
    const body = m.body && m.body.content !== undefined ? m.body.content : m.body;
    return {
      id: text(m.message_id),
      partitionKey: text(m.message_annotations && m.message_annotations['x-opt-partition-key']),
      body: Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body),
      bodyBase64: Buffer.isBuffer(body) ? body.toString('base64') : null,
    };
  });
}

container.on('message', (ctx) => {
  const target = ctx.receiver.remote.attach.target && ctx.receiver.remote.attach.target.address;
  if (target === '$cbs') {
    state.cbs++;
    ctx.delivery.accept();
    const replyTo = ctx.message.reply_to;
    const links = ctx.connection.find_sender((s) => s.remote.attach.target && s.remote.attach.target.address === replyTo);
    links.send({
      correlation_id: ctx.message.message_id,
      application_properties: { 'status-code': rhea.types.wrap_int(202), 'status-description': 'Accepted' },
    });
    return;
  }
  if (state.busy > 0) {
    state.busy--;
    state.rejected++;
    ctx.delivery.reject({ condition: 'com.microsoft:server-busy', description: 'stand-in is busy' });
    return;
  }
  if (state.detach > 0) {
    state.detach--;
    state.detached++;
    ctx.receiver.close({ condition: 'amqp:link:detach-forced', description: 'stand-in detached' });
    return;
  }
  if (ctx.message.length > maxMessageSize) {
    ctx.delivery.reject({ condition: 'amqp:link:message-size-exceeded', description: 'too large' });
    return;
  }
  let events;
  try {
    events = decodeBatch(ctx);
  } catch (e) {
    ctx.delivery.reject({ condition: 'amqp:decode-error', description: String(e) });
    return;
  }
  state.batches++;
  state.events.push(...events);
  if (state.lateDetach > 0) {
    state.lateDetach--;
    state.detached++;
    ctx.receiver.close({ condition: 'amqp:link:detach-forced', description: 'stand-in detached after storing' });
    return;
  }
  ctx.delivery.accept();
});

function reply(res, code, body) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/events') return reply(res, 200, state.events);
  if (req.method === 'GET' && url.pathname === '/stats') {
    const { events, ...rest } = state;
    return reply(res, 200, { ...rest, received: events.length, up: server !== null });
  }
  if (req.method !== 'POST') return reply(res, 405, { error: 'method' });
  switch (url.pathname) {
    case '/fault':
      for (const k of ['busy', 'detach', 'lateDetach']) {
        if (url.searchParams.has(k)) state[k] = Number(url.searchParams.get(k));
      }
      return reply(res, 200, { busy: state.busy, detach: state.detach, lateDetach: state.lateDetach });
    case '/down':
      return down(() => reply(res, 200, { up: false }));
    case '/up':
      if (server) return reply(res, 200, { up: true });
      return listen(() => reply(res, 200, { up: true }));
    case '/reset':
      state.events = [];
      return reply(res, 200, {});
    default:
      return reply(res, 404, { error: 'unknown path' });
  }
}).listen(controlPort, '127.0.0.1', () => listen(() => console.log(`eventhubs stand-in on ${port}, control on ${controlPort}`)));
