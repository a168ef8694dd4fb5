// MQTT.js over WebSocket over TLS (wss://) against a Trestle mqttListener with an sslProfile
// and a websocketPath (run by tests/integration/python/test_security.py). Usage:
//   node mqtt_wss.js <url> <ca file> <user> <password> <topic>
// Subscribes to <topic>, publishes one QoS 1 message to it, prints "received <payload>" when
// it comes back, and exits 0; a refused connection prints "error <message>" and exits 1.
"use strict";
const fs = require("fs");
const mqtt = require("mqtt");

const [url, ca, username, password, topic] = process.argv.slice(2);
const client = mqtt.connect(url, {
  ca: fs.readFileSync(ca),
  username,
  password,
  protocolVersion: 5,
  reconnectPeriod: 0,
  connectTimeout: 10000,
});
const timer = setTimeout(() => {
  console.log("error timeout");
  process.exit(1);
}, 15000);
client.on("error", (e) => {
  console.log("error " + e.message);
  process.exit(1);
});
client.on("connect", () => {
  client.subscribe(topic, { qos: 1 }, (err) => {
    if (err) {
      console.log("error subscribe " + err.message);
      process.exit(1);
    }
    client.publish(topic, "over wss", { qos: 1 });
  });
});
client.on("message", (t, payload) => {
  console.log("received " + payload.toString());
  clearTimeout(timer);
  client.end(false, () => process.exit(0));
});
