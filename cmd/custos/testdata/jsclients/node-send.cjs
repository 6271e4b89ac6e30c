// Sends messages to Custos with a real Node analytics client and reports,
// as one JSON line on stdout, how it went. Run by node_clients_e2e_test.go:
//
//   node node-send.cjs < '{"client":"segment"|"rudderstack","url":…,"writeKey":…,"messages":[…]}'
//
// Each message is {type, messageId, userId, anonymousId, previousId,
// groupId, event, name, properties, traits, context}, as the library's
// call of that type takes it.
'use strict';

const { Analytics } = require('@segment/analytics-node');
const RudderAnalytics = require('@rudderstack/rudder-sdk-node');

function readStdin() {
  return new Promise((resolve, reject) => {
    let s = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d) => { s += d; });
    process.stdin.on('end', () => resolve(s));
    process.stdin.on('error', reject);
  });
}

// call invokes the library's method for m.type with the fields that type
// takes; cb is called once the message is delivered or given up on.
function call(client, m, cb) {
  const base = { messageId: m.messageId, context: m.context };
  if (m.userId) base.userId = m.userId;
  if (m.anonymousId) base.anonymousId = m.anonymousId;
  switch (m.type) {
    case 'identify': return client.identify({ ...base, traits: m.traits }, cb);
    case 'track': return client.track({ ...base, event: m.event, properties: m.properties }, cb);
    case 'page': return client.page({ ...base, name: m.name, properties: m.properties }, cb);
    case 'alias': return client.alias({ ...base, previousId: m.previousId }, cb);
    case 'group': return client.group({ ...base, groupId: m.groupId, traits: m.traits }, cb);
    default: throw new Error(`no call for message type ${m.type}`);
  }
}

// sendAll hands every message to the client and returns a promise that
// settles once each one's callback has been called, noting failures.
function sendAll(client, messages, errors) {
  return Promise.all(messages.map((m) => new Promise((resolve) => {
    call(client, m, (err) => {
      if (err) errors.push(`${m.messageId}: ${err && (err.reason || err.message || err)}`);
      resolve();
    });
  })));
}

async function sendSegment(req, errors) {
  // flushAt 2: the messages go in several batches.
  const client = new Analytics({ writeKey: req.writeKey, host: req.url, flushAt: 2, flushInterval: 100, maxRetries: 3 });
  client.on('error', (err) => errors.push(String(err && (err.reason || err.message || err))));
  const delivered = sendAll(client, req.messages, errors);
  await client.closeAndFlush({ timeout: 20000 });
  await delivered;
}

async function sendRudderStack(req, errors) {
  const client = new RudderAnalytics(req.writeKey, {
    dataPlaneUrl: req.url, flushAt: 2, flushInterval: 100, retryCount: 3, logLevel: 'error',
  });
  const delivered = sendAll(client, req.messages, errors);
  // Each flush sends at most flushAt messages.
  while (client.queue.length > 0) await client.flush();
  await delivered;
}

(async () => {
  const errors = [];
  try {
    const req = JSON.parse(await readStdin());
    if (req.client === 'segment') await sendSegment(req, errors);
    else if (req.client === 'rudderstack') await sendRudderStack(req, errors);
    else throw new Error(`unknown client ${req.client}`);
  } catch (err) {
    errors.push(String(err && (err.stack || err)));
  }
  process.stdout.write(JSON.stringify({ errors }) + '\n');
  process.exit(errors.length ? 1 : 0);
})();
