// The Azure Event Hubs SDK for JavaScript against a Trestle listener with kafkaDialect
// eventhubs (run by kafka_test.cpp, which checks the records with kcat). Usage:
//   node eventhubs_sdk.js <port> <hub>
// The hub must exist with 3 partitions. Exits 0 when every check passed, else prints why.
"use strict";
// Node.js 18 (Debian 12's) has Web Crypto only under require("crypto"); the SDK's helpers
// expect the global that Node.js 20 provides.
if (!globalThis.crypto) globalThis.crypto = require("node:crypto").webcrypto;
const { EventHubProducerClient, EventHubConsumerClient, earliestEventPosition } =
  require("@azure/event-hubs");

const [port, hub] = process.argv.slice(2);
// UseDevelopmentEmulator: plain TCP (no TLS) to the given port; the key is not checked.
const cs = `Endpoint=sb://127.0.0.1:${port};SharedAccessKeyName=test;` +
  `SharedAccessKey=not-checked;UseDevelopmentEmulator=true`;
const options = { retryOptions: { maxRetries: 0, timeoutInMs: 10000 } };

function check(what, ok, detail) {
  if (!ok) throw new Error(`${what}: ${JSON.stringify(detail)}`);
}

async function main() {
  const producer = new EventHubProducerClient(cs, hub, options);
  try {
    // $cbs put-token, then $management READ com.microsoft:eventhub.
    const props = await producer.getEventHubProperties();
    check("hub name", props.name === hub, props);
    check("partition ids", JSON.stringify(props.partitionIds) === '["0","1","2"]', props);

    // A batch to partition 1 (one transfer; one record per event), raw bytes and properties.
    const batch = await producer.createBatch({ partitionId: "1" });
    for (let i = 0; i < 3; ++i)
      check("tryAdd", batch.tryAdd({ body: Buffer.from(`ev-${i}`), properties: { n: i, kind: "sdk" } }), i);
    await producer.sendBatch(batch);
    // A batch by partition key (the record key).
    const keyed = await producer.createBatch({ partitionKey: "dev-7" });
    for (let i = 0; i < 2; ++i) check("tryAdd keyed", keyed.tryAdd({ body: Buffer.from(`k-${i}`) }), i);
    await producer.sendBatch(keyed);
    // A batch no bigger than the link's max-message-size: one event too large is refused by
    // the SDK itself, which sized the batch from the attach.
    const small = await producer.createBatch({ partitionId: "0" });
    check("max message size", small.maxSizeInBytes === 1048576, small.maxSizeInBytes);
    check("oversized event refused", !small.tryAdd({ body: Buffer.alloc(1100000) }), "");

    // $management READ com.microsoft:partition.
    const p1 = await producer.getPartitionProperties("1");
    check("partition 1", p1.partitionId === "1" && p1.eventHubName === hub && !p1.isEmpty &&
      p1.beginningSequenceNumber === 0 && p1.lastEnqueuedSequenceNumber === 2 &&
      p1.lastEnqueuedOffset === "2" && p1.lastEnqueuedOnUtc.getTime() > Date.parse("2020-01-01"), p1);
  } finally {
    await producer.close();
  }

  // Receive partition 1 from the start, as an EventHubConsumerClient does.
  const consumer = new EventHubConsumerClient("$Default", cs, hub, options);
  const got = [];
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`received ${got.length} of 3 events`)), 30000);
      consumer.subscribe("1", {
        processEvents: async (events) => {
          got.push(...events);
          if (got.length >= 3) { clearTimeout(timer); resolve(); }
        },
        processError: async (err) => { clearTimeout(timer); reject(err); },
      }, { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 });
    });
  } finally {
    await consumer.close();
  }
  for (let i = 0; i < 3; ++i) {
    const e = got[i];
    check("event body", Buffer.from(e.body).toString() === `ev-${i}`, e.body);
    check("event position", e.sequenceNumber === i && String(e.offset) === String(i), [e.sequenceNumber, e.offset]);
    // Kafka headers carry the properties as text.
    check("event properties", e.properties && e.properties.n === String(i) && e.properties.kind === "sdk", e.properties);
    check("enqueued time", e.enqueuedTimeUtc.getTime() > Date.parse("2020-01-01"), e.enqueuedTimeUtc);
  }
  console.log("eventhubs sdk: all checks passed");
}

main().then(() => process.exit(0), (err) => {
  console.log(`eventhubs sdk: FAILED: ${err && err.name}: ${err && err.message}`);
  process.exit(1);
});
