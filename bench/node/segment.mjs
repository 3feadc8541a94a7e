// Segment-style: the Mailgun identify mapping as an action-destinations action would run it.
// A mapping-kit mapping picks the fields (with `@if`/`@path` fallbacks, as fields' defaults write
// them), a perform-like step shapes the Mailgun body, actions-core's `validateSchema` (its ajv,
// compiled once under a schema key) checks that body against relay's own request schema, and the
// form is encoded. `--mode event` maps each event with `transform` as Action.execute does;
// `--mode batch` maps them all with `transformBatch` as performBatch does (the faster of the two).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathSegment, run } from './harness.mjs';

// actions-core's ESM build imports directories, which Node's ESM loader refuses: load its CJS build.
const require = createRequire(import.meta.url);
const { transform, validateSchema } = require('@segment/actions-core');
const { transformBatch } = require('@segment/actions-core/mapping-kit');

// The first path that exists wins, as relay's selector lists do.
function firstOf(...paths) {
  const [first, ...rest] = paths;
  if (rest.length === 0) return { '@path': first };
  return { '@if': { exists: { '@path': first }, then: { '@path': first }, else: firstOf(...rest) } };
}

const MAPPING = {
  email: firstOf('$.traits.email', '$.context.traits.email', '$.properties.email'),
  name: firstOf('$.traits.name', '$.context.traits.name', '$.properties.name'),
  first_name: firstOf('$.traits.first_name', '$.context.traits.first_name', '$.traits.firstName', '$.context.traits.firstName'),
  last_name: firstOf('$.traits.last_name', '$.context.traits.last_name', '$.traits.lastName', '$.context.traits.lastName'),
  plan: firstOf('$.traits.plan', '$.context.traits.plan'),
  company: firstOf('$.traits.company', '$.context.traits.company'),
  anonymous_id: firstOf('$.anonymousId', '$.anonymous_id'),
  marketing_consent: { '@path': '$.context.consent.canonical.marketing' },
};

function perform(payload, settings, schema) {
  if (!payload.email) throw new Error('email is required for Mailgun');
  const body = { address: payload.email.trim().toLowerCase() };
  const name = payload.name || [payload.first_name, payload.last_name].filter(Boolean).join(' ');
  if (name) body.name = name;
  if (typeof payload.marketing_consent === 'boolean') body.subscribed = String(payload.marketing_consent);
  body.upsert = 'true';
  body.vars = JSON.stringify({
    anonymous_id: payload.anonymous_id,
    first_name: payload.first_name,
    last_name: payload.last_name,
    plan: payload.plan,
    company: payload.company,
  });
  validateSchema(body, schema, { schemaKey: 'mailgun:member' });
  return {
    method: 'POST',
    url: `${settings.base_url}/v3/lists/${pathSegment(settings.list_address)}/members`,
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Basic ${Buffer.from(`api:${settings.api_key}`).toString('base64')}`,
    },
    body: new URLSearchParams(body).toString(),
  };
}

await run('segment', async (settings, args) => {
  if (!args.schema) throw new Error('--schema is required');
  // actions-core's ajv is a draft-07 instance: the schema's 2020-12 `$schema` marker is dropped;
  // every keyword it uses means the same in both drafts.
  const { $schema, ...schema } = JSON.parse(readFileSync(args.schema, 'utf8'));
  if (args.mode === 'batch') {
    // performBatch's way: transformBatch checks the mapping once for the whole batch.
    return (events) => transformBatch(MAPPING, events).map((payload) => perform(payload, settings, schema));
  }
  // Action.execute's way: transform, which checks the mapping's structure on every call.
  return (events) => events.map((event) => perform(transform(MAPPING, event), settings, schema));
});
