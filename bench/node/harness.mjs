// The timing loop both peers share, so they are measured exactly alike.
//
//   node PEER.mjs --events FILE.ndjson --settings FILE.json [--schema FILE.json] [--passes N] [--warmup N]
//        [--out FILE.json]
//
// 1. One untimed pass renders every event; with --out its requests are written there, so the
//    Python bench can check them against relay's, byte for byte, before it trusts any time.
//    A pass awaits nothing per event unless the peer itself is asynchronous.
// 2. --warmup untimed passes let V8 optimise the hot code (relay's side is warm too).
// 3. --passes timed passes; stdout gets one JSON line: the median microseconds per event, and
//    each pass's figure.
import { readFileSync, writeFileSync } from 'node:fs';

function options(argv) {
  const parsed = { passes: 5, warmup: 3 };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    parsed[key] = argv[i + 1];
  }
  for (const key of ['events', 'settings']) {
    if (!parsed[key]) throw new Error(`--${key} is required`);
  }
  parsed.passes = Number(parsed.passes);
  parsed.warmup = Number(parsed.warmup);
  return parsed;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// `prepare(settings, args)` returns `renderAll(events)`: the requests for a list of events, each
// `{method, url, headers, body}` (sync, or a promise). A peer that works per event loops inside it.
export async function run(peer, prepare) {
  const args = options(process.argv);
  const events = readFileSync(args.events, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line));
  const settings = JSON.parse(readFileSync(args.settings, 'utf8'));
  const renderAll = await prepare(settings, args);
  // The sink keeps every result alive, so no pass can be optimised away.
  let sink = 0;
  const pass = async () => {
    const requests = await renderAll(events);
    for (const request of requests) sink += request.body.length;
    return requests;
  };

  const requests = await pass();
  if (args.out) writeFileSync(args.out, JSON.stringify(requests));
  for (let i = 0; i < args.warmup; i += 1) await pass();
  const perEvent = [];
  for (let i = 0; i < args.passes; i += 1) {
    const start = process.hrtime.bigint();
    await pass();
    perEvent.push(Number(process.hrtime.bigint() - start) / 1e3 / events.length);
  }
  const mode = args.mode ?? 'event';
  process.stdout.write(
    JSON.stringify({ peer, mode, events: events.length, us_per_event: median(perEvent), passes: perEvent, sink }) +
      '\n',
  );
}

// relay's `path_segment`: RFC 3986 lets '@', ':' and the sub-delimiters stand in a path segment.
export function pathSegment(value) {
  return encodeURIComponent(String(value)).replace(/%(40|3A|24|26|2B|2C|3B|3D)/g, (_, hex) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
}
