// A JS plugin whose map-message throws a TypeError, for plugins/js/test-errors.sh. A body
// of "caught" catches it with the guide's pattern (errorText, as in app.js), so the error
// carries the message and the stack; any other body lets it escape the export, which
// traps, and inflow's error then carries the engine's stderr (the export's stack).

function errorText(thrown) {
  if (typeof thrown === 'string') return thrown;
  if (thrown instanceof Error) {
    const stack = (thrown.stack ?? '').trim().split('\n').join(' | ');
    return stack === '' ? String(thrown) : `${thrown} (stack: ${stack})`;
  }
  return `non-Error thrown: ${JSON.stringify(thrown) ?? String(thrown)}`;
}

function readCelsius() {
  const body = JSON.parse('{"reading": null}');
  return body.reading.celsius; // TypeError: body.reading is null
}

export const mapper = {
  init(context, config) {},
  mapMessage(message) {
    if (new TextDecoder().decode(message.body()) !== 'caught') return readCelsius();
    try {
      return readCelsius();
    } catch (thrown) {
      throw errorText(thrown);
    }
  },
};
