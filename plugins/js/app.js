// json-router, the inflow example mapping plugin in JavaScript.
//
// Reads a JSON body, drops it unless a numeric field passes a filter, and
// publishes the original body to `<parent>/<body field>/<message property>`,
// plus a copy to `<parent>/<fanout>/<body field>`, with MQTT 5 user properties.
// The behaviour and the config are described in plugins/README.md; the Rust,
// Python and C plugins do the same.
//
// Build: plugins/build.sh js (componentize-js; the WIT world is wit/mapping).
// Errors are returned to the host by throwing a string: a `result<_, string>`
// export turns a thrown string into its `err` case. Anything else thrown (a
// TypeError from a slip, say) would trap, so the exports turn it into text
// first (`errorText`), keeping the message and the stack.

import { log } from 'inflow:mapping/host@0.1.0';

const QOS_LEVELS = ['at-most-once', 'at-least-once', 'exactly-once'];
const FILTER_SHAPE = 'config: "filter" must be an object {"field": string, "min": number, "max": number}';

/** The rule's config, parsed once by `init`. */
let config = null;

const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A value usable as one MQTT topic level: not empty, no separator or wildcard. */
const isTopicLevel = (text) => text !== '' && !/[/+#]/.test(text);

function stringSetting(value, key) {
  if (typeof value !== 'string' || value === '') {
    throw `config: "${key}" must be a non-empty string`;
  }
  return value;
}

function parseFilter(value) {
  if (!isObject(value)) throw FILTER_SHAPE;
  const filter = { field: '', min: null, max: null };
  for (const [key, item] of Object.entries(value)) {
    if (key === 'field' && typeof item === 'string') filter.field = item;
    else if ((key === 'min' || key === 'max') && typeof item === 'number') filter[key] = item;
    else throw FILTER_SHAPE;
  }
  if (filter.field === '') throw FILTER_SHAPE;
  return filter;
}

function parseConfig(parentTopic, text) {
  const parsed = { parentTopic, field: 'device', property: 'site', qos: 'at-least-once', filter: null, fanout: null };
  if (text.trim() === '') return parsed;
  let settings;
  try {
    settings = JSON.parse(text);
  } catch {
    throw 'config is not valid JSON';
  }
  if (!isObject(settings)) throw 'config must be a JSON object';
  for (const [key, value] of Object.entries(settings)) {
    switch (key) {
      case 'field':
      case 'property':
        parsed[key] = stringSetting(value, key);
        break;
      case 'qos':
        if (!Number.isInteger(value) || QOS_LEVELS[value] === undefined) throw 'config: "qos" must be 0, 1 or 2';
        parsed.qos = QOS_LEVELS[value];
        break;
      case 'filter':
        parsed.filter = parseFilter(value);
        break;
      case 'fanout':
        parsed.fanout = stringSetting(value, 'fanout');
        if (!isTopicLevel(parsed.fanout)) throw 'config: "fanout" must be one topic level (no "/", "+" or "#")';
        break;
      default:
        throw `config: unknown key "${key}"`;
    }
  }
  return parsed;
}

/** Why the filter drops this body, or null to keep it. */
function filterRejects(filter, body) {
  const number = body[filter.field];
  if (typeof number !== 'number') return `field "${filter.field}" is not a number`;
  if ((filter.min !== null && number < filter.min) || (filter.max !== null && number > filter.max)) {
    return `field "${filter.field}" is out of range`;
  }
  return null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function route(message) {
  let body;
  try {
    body = JSON.parse(utf8.decode(message.body()));
  } catch {
    throw 'body is not valid JSON';
  }
  if (!isObject(body)) throw 'body is not a JSON object';

  if (config.filter !== null) {
    const reason = filterRejects(config.filter, body);
    if (reason !== null) {
      log('debug', `dropped message ${message.messageId()}: ${reason}`);
      return [];
    }
  }

  const { field, property } = config;
  if (!Object.hasOwn(body, field)) throw `body has no "${field}" field`;
  const device = body[field];
  if (typeof device !== 'string' || device === '') throw `body field "${field}" must be a non-empty string`;
  if (!isTopicLevel(device)) throw `body field "${field}" value "${device}" is not a valid topic level`;
  const site = message.property(property);
  if (site === undefined) throw `message has no property "${property}"`;
  if (!isTopicLevel(site)) throw `property "${property}" value "${site}" is not a valid topic level`;

  const userProperties = [
    { key: field, value: device },
    { key: property, value: site },
    { key: 'rocketmq-topic', value: message.topic() },
    { key: 'rocketmq-message-id', value: message.messageId() },
  ];
  const publish = (topic) => ({
    topic,
    qos: config.qos,
    retain: false,
    // The body goes out unchanged: the host sends its own copy.
    payload: { tag: 'original-body' },
    userProperties,
    contentType: 'application/json',
    messageExpiryInterval: undefined,
  });
  const publishes = [publish(`${config.parentTopic}/${device}/${site}`)];
  if (config.fanout !== null) publishes.push(publish(`${config.parentTopic}/${config.fanout}/${device}`));
  return publishes;
}

/** Anything thrown, as the text of the `err` case: a string as it is; an Error as
 * `Name: message` and its stack (SpiderMonkey's stack omits the message); other
 * values as JSON. */
function errorText(thrown) {
  if (typeof thrown === 'string') return thrown;
  if (thrown instanceof Error) {
    const stack = (thrown.stack ?? '').trim().split('\n').join(' | ');
    return stack === '' ? String(thrown) : `${thrown} (stack: ${stack})`;
  }
  return `non-Error thrown: ${JSON.stringify(thrown) ?? String(thrown)}`;
}

export const mapper = {
  init(context, text) {
    try {
      config = parseConfig(context.parentTopic, text);
    } catch (thrown) {
      throw errorText(thrown);
    }
  },
  mapMessage(message) {
    try {
      if (config === null) throw 'map-message called before init';
      return route(message);
    } catch (thrown) {
      throw errorText(thrown);
    }
  },
};
