// A small strict JSON (RFC 8259) parser for the C example plugin: wasi-libc
// has none, and the plugin must not depend on anything beyond it.
#ifndef JSON_ROUTER_JSON_H
#define JSON_ROUTER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_kind;

typedef struct json_value json_value;

typedef struct {
  char *key;  // NUL-terminated UTF-8 (a key holding \u0000 is cut there)
  json_value *value;
} json_member;

struct json_value {
  json_kind kind;
  bool boolean;
  double number;
  char *string;       // JSON_STRING: NUL-terminated UTF-8
  size_t count;       // JSON_ARRAY: items; JSON_OBJECT: members
  json_value **items;
  json_member *members;
};

// Parses exactly one JSON value (surrounded by optional whitespace).
// Returns NULL when the text is not valid JSON, nests deeper than 128 levels,
// or memory runs out. Free the result with json_free.
json_value *json_parse(const uint8_t *text, size_t length);

void json_free(json_value *value);

// The value of `key` in an object (the last one if the key repeats), or NULL.
const json_value *json_get(const json_value *object, const char *key);

#endif
