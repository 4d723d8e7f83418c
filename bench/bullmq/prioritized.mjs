// BullMQ's prioritized queue, driven the way bench/reference.py drives pushinbox: add N
// jobs with random priorities (addBulk, in chunks), then one Worker at the given concurrency
// hands each job out and completes it (a processor that does nothing). Prints one JSON line
// per phase when it ends; the Python side reads Redis's main-thread CPU around each phase.
//   node prioritized.mjs <redis-port> <jobs> <concurrency> <phase: add|process>
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

const [port, jobs, concurrency, phase] = process.argv.slice(2);
// BullMQ 6 takes a client instance (ioredis is an optional peer); workers need
// maxRetriesPerRequest: null.
const connection = new IORedis({ host: '127.0.0.1', port: Number(port),
                                  maxRetriesPerRequest: null });
const N = Number(jobs);
const name = 'reference';

if (phase === 'add') {
  const queue = new Queue(name, { connection });
  const started = performance.now();
  const chunk = 500;
  for (let i = 0; i < N; i += chunk) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + chunk); j++) {
      batch.push({ name: 'm', data: { id: `m${j}` },
                   opts: { priority: 1 + Math.floor(Math.random() * 32), removeOnComplete: true } });
    }
    await queue.addBulk(batch);
  }
  console.log(JSON.stringify({ phase, jobs: N, seconds: (performance.now() - started) / 1000 }));
  await queue.close();
} else {
  let done = 0;
  const started = performance.now();
  const finished = new Promise((resolve) => {
    const worker = new Worker(name, async () => null,
      { connection, concurrency: Number(concurrency), autorun: true, drainDelay: 1 });
    worker.on('completed', () => {
      done += 1;
      if (done === N) resolve(worker);
    });
  });
  const worker = await finished;
  const seconds = (performance.now() - started) / 1000;
  await worker.close();
  console.log(JSON.stringify({ phase, jobs: done, seconds }));
}
await connection.quit();
process.exit(0);
