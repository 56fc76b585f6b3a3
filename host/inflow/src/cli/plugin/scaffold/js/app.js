// {{name}}: an inflow mapping plugin. Publishes each message's body unchanged to
// `<parent topic>/<tag>`; a message without a tag is refused.
//
// A thrown string becomes the `err` case of the result (the message goes to the
// rule's on_error policy with that text). Anything else thrown would trap, so
// the exports turn it into text first, keeping the message and the stack.

let parent = '';

function route(message) {
  const tag = message.tags();
  if (tag === undefined) throw 'message has no tag';
  return [{
    topic: `${parent}/${tag}`,
    qos: 'at-least-once',
    retain: false,
    // The body goes out unchanged: the host sends its own copy.
    payload: { tag: 'original-body' },
    userProperties: [],
    contentType: undefined,
    messageExpiryInterval: undefined,
  }];
}

/** Anything thrown, as the text of the `err` case. */
function errorText(thrown) {
  if (typeof thrown === 'string') return thrown;
  if (thrown instanceof Error) {
    const stack = (thrown.stack ?? '').trim().split('\n').join(' | ');
    return stack === '' ? String(thrown) : `${thrown} (stack: ${stack})`;
  }
  return `non-Error thrown: ${JSON.stringify(thrown) ?? String(thrown)}`;
}

export const mapper = {
  init(context, config) {
    parent = context.parentTopic;
  },
  mapMessage(message) {
    try {
      return route(message);
    } catch (thrown) {
      throw errorText(thrown);
    }
  },
};
