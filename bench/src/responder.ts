// A request/reply echo server in its own process, so a NATS benchmark's requester and
// responder do not share one event loop (as two synod nodes would not).
import { connectNats } from '@synod/transport';

const [url, subject] = process.argv.slice(2);
if (url === undefined || subject === undefined) {
  console.error('usage: responder.js NATS_URL SUBJECT');
  process.exit(2);
}
const transport = await connectNats({ servers: url, name: 'bench-responder' });
transport.subscribe(subject, (m) => {
  if (m.reply !== undefined) transport.publish(m.reply, m.data);
});
await transport.flush();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void transport.close().then(() => process.exit(0));
});
