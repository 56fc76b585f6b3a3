// A JS plugin whose exceptions escape its exports, for plugins/js/test-errors.sh:
// with the documented build flags (stdio kept) inflow must report the
// exception's text, not only `wasm unreachable instruction executed`.
export const mapper = {
  init(context, config) {},
  mapMessage(message) {
    const body = JSON.parse('{"reading": null}');
    return body.reading.celsius; // TypeError: body.reading is null
  },
};
