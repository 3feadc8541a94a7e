// RudderStack-style: the Mailgun identify mapping as a JSON template, run the way
// rudder-workflow-engine runs a template step (JsonTemplateEngine.create with simple paths,
// then `await engine.evaluate(input, bindings)`), on a `{message, destination}` input as the
// transformer passes it. The template builds the whole request; the form is encoded after it,
// as the transformer's response layer does. RudderStack validates no output schema.
import { JsonTemplateEngine, PathType } from '@rudderstack/json-template-engine';
import { pathSegment, run } from './harness.mjs';

const TEMPLATE = `
const message = .message;
const config = .destination.Config;
const email = message.traits.email ?? message.context.traits.email ?? message.properties.email;
$.assert(email, "email is required for Mailgun");
const firstName = message.traits.first_name ?? message.context.traits.first_name
  ?? message.traits.firstName ?? message.context.traits.firstName;
const lastName = message.traits.last_name ?? message.context.traits.last_name
  ?? message.traits.lastName ?? message.context.traits.lastName;
const name = message.traits.name ?? message.context.traits.name ?? message.properties.name;
const consent = message.context.consent.canonical.marketing;
const vars = $.removeUndefinedAndNullValues({
  anonymous_id: message.anonymousId ?? message.anonymous_id,
  first_name: firstName,
  last_name: lastName,
  plan: message.traits.plan ?? message.context.traits.plan,
  company: message.traits.company ?? message.context.traits.company
});
{
  method: "POST",
  endpoint: config.base_url + "/v3/lists/" + $.pathSegment(config.list_address) + "/members",
  headers: {
    "Content-Type": "application/x-www-form-urlencoded",
    "Authorization": "Basic " + $.base64Convert("api:" + config.api_key)
  },
  body: {
    FORM: $.removeUndefinedAndNullValues({
      address: email.trim().toLowerCase(),
      name: name || [firstName, lastName].filter(lambda ?0).join(" ") || null,
      subscribed: consent === true ? "true" : consent === false ? "false" : null,
      upsert: "true",
      vars: JSON.stringify(vars)
    })
  }
}
`;

// The helpers a transformer step binds (its v0 utils and platform asserts), written out here.
const bindings = {
  assert(value, message) {
    if (!value) throw new Error(message);
  },
  removeUndefinedAndNullValues(object) {
    const kept = {};
    for (const [key, value] of Object.entries(object)) if (value !== undefined && value !== null) kept[key] = value;
    return kept;
  },
  base64Convert: (text) => Buffer.from(text).toString('base64'),
  pathSegment,
};

await run('rudderstack', async (settings) => {
  const engine = JsonTemplateEngine.create(TEMPLATE, { defaultPathType: PathType.SIMPLE });
  const destination = { Config: settings };
  return async (events) => {
    const requests = [];
    for (const event of events) {
      const response = await engine.evaluate({ message: event, destination }, bindings);
      requests.push({
        method: response.method,
        url: response.endpoint,
        headers: response.headers,
        body: new URLSearchParams(response.body.FORM).toString(),
      });
    }
    return requests;
  };
});
