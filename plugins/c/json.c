#include "json.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 128 };

typedef struct {
  const uint8_t *at;
  const uint8_t *end;
  int depth;
} parser;

static json_value *parse_value(parser *p);

static void skip_whitespace(parser *p) {
  while (p->at < p->end && (*p->at == ' ' || *p->at == '\t' || *p->at == '\n' || *p->at == '\r')) p->at++;
}

static bool take(parser *p, char c) {
  skip_whitespace(p);
  if (p->at < p->end && *p->at == (uint8_t)c) {
    p->at++;
    return true;
  }
  return false;
}

static bool take_word(parser *p, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(p->end - p->at) < n || memcmp(p->at, word, n) != 0) return false;
  p->at += n;
  return true;
}

static json_value *new_value(json_kind kind) {
  json_value *v = calloc(1, sizeof *v);
  if (v) v->kind = kind;
  return v;
}

static bool is_digit(parser *p) { return p->at < p->end && *p->at >= '0' && *p->at <= '9'; }

static json_value *parse_number(parser *p) {
  const uint8_t *start = p->at;
  if (p->at < p->end && *p->at == '-') p->at++;
  if (!is_digit(p)) return NULL;
  if (*p->at == '0') {
    p->at++;  // no leading zeros
  } else {
    while (is_digit(p)) p->at++;
  }
  if (p->at < p->end && *p->at == '.') {
    p->at++;
    if (!is_digit(p)) return NULL;
    while (is_digit(p)) p->at++;
  }
  if (p->at < p->end && (*p->at == 'e' || *p->at == 'E')) {
    p->at++;
    if (p->at < p->end && (*p->at == '+' || *p->at == '-')) p->at++;
    if (!is_digit(p)) return NULL;
    while (is_digit(p)) p->at++;
  }
  // strtod needs a NUL-terminated copy; numbers are short.
  size_t n = (size_t)(p->at - start);
  char *copy = malloc(n + 1);
  json_value *v = copy ? new_value(JSON_NUMBER) : NULL;
  if (v) {
    memcpy(copy, start, n);
    copy[n] = '\0';
    v->number = strtod(copy, NULL);
  }
  free(copy);
  return v;
}

static int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(parser *p, uint32_t *out) {
  if (p->end - p->at < 4) return false;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(p->at[i]);
    if (d < 0) return false;
    v = v << 4 | (uint32_t)d;
  }
  p->at += 4;
  *out = v;
  return true;
}

static size_t put_utf8(char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

// Length of the well-formed UTF-8 sequence at `s`, or 0 if it is not one.
static size_t utf8_length(const uint8_t *s, const uint8_t *end) {
  size_t avail = (size_t)(end - s), n;
  uint32_t cp, min;
  if (s[0] < 0x80) return 1;
  if ((s[0] & 0xE0) == 0xC0) n = 2, cp = s[0] & 0x1F, min = 0x80;
  else if ((s[0] & 0xF0) == 0xE0) n = 3, cp = s[0] & 0x0F, min = 0x800;
  else if ((s[0] & 0xF8) == 0xF0) n = 4, cp = s[0] & 0x07, min = 0x10000;
  else return 0;
  if (avail < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// Parses a string after its opening quote; the result is NUL-terminated.
static char *parse_string_body(parser *p) {
  // Decoded text is never longer than the source up to the closing quote
  // (an escaped quote only makes this bound larger than needed).
  const uint8_t *close = memchr(p->at, '"', (size_t)(p->end - p->at));
  while (close && close > p->at && close[-1] == '\\') close = memchr(close + 1, '"', (size_t)(p->end - close - 1));
  char *out = malloc((size_t)((close ? close : p->end) - p->at) + 1);
  size_t n = 0;
  if (!out) return NULL;
  while (p->at < p->end) {
    uint8_t c = *p->at;
    if (c == '"') {
      p->at++;
      out[n] = '\0';
      return out;
    }
    if (c < 0x20) break;  // control characters must be escaped
    if (c < 0x80 && c != '\\') {  // a run of plain ASCII, copied at once
      const uint8_t *run = p->at;
      while (run < p->end && *run >= 0x20 && *run < 0x80 && *run != '"' && *run != '\\') run++;
      memcpy(out + n, p->at, (size_t)(run - p->at));
      n += (size_t)(run - p->at);
      p->at = run;
      continue;
    }
    if (c != '\\') {
      size_t len = utf8_length(p->at, p->end);
      if (len == 0) break;
      memcpy(out + n, p->at, len);
      n += len;
      p->at += len;
      continue;
    }
    p->at++;
    if (p->at >= p->end) break;
    uint8_t e = *p->at++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e != 0 && simple) {
      out[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      continue;
    }
    uint32_t cp;
    if (e != 'u' || !read_hex4(p, &cp)) break;
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair must follow
      uint32_t low;
      if (!take_word(p, "\\u") || !read_hex4(p, &low) || low < 0xDC00 || low > 0xDFFF) break;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      break;  // a lone low surrogate
    }
    n += put_utf8(out + n, cp);
  }
  free(out);
  return NULL;
}

static json_value *parse_array(parser *p) {
  json_value *v = new_value(JSON_ARRAY);
  if (!v) return NULL;
  if (take(p, ']')) return v;
  do {
    json_value *item = parse_value(p);
    json_value **grown = item ? realloc(v->items, (v->count + 1) * sizeof *grown) : NULL;
    if (!grown) {
      json_free(item);
      json_free(v);
      return NULL;
    }
    v->items = grown;
    v->items[v->count++] = item;
  } while (take(p, ','));
  if (!take(p, ']')) {
    json_free(v);
    return NULL;
  }
  return v;
}

static json_value *parse_object(parser *p) {
  json_value *v = new_value(JSON_OBJECT);
  if (!v) return NULL;
  if (take(p, '}')) return v;
  do {
    char *key = take(p, '"') ? parse_string_body(p) : NULL;
    json_value *value = key && take(p, ':') ? parse_value(p) : NULL;
    json_member *grown = value ? realloc(v->members, (v->count + 1) * sizeof *grown) : NULL;
    if (!grown) {
      free(key);
      json_free(value);
      json_free(v);
      return NULL;
    }
    v->members = grown;
    v->members[v->count++] = (json_member){key, value};
  } while (take(p, ','));
  if (!take(p, '}')) {
    json_free(v);
    return NULL;
  }
  return v;
}

static json_value *parse_value(parser *p) {
  skip_whitespace(p);
  if (p->at >= p->end) return NULL;
  json_value *v = NULL;
  uint8_t c = *p->at;
  if (c == '{' || c == '[') {
    if (++p->depth > MAX_DEPTH) return NULL;
    p->at++;
    v = c == '{' ? parse_object(p) : parse_array(p);
    p->depth--;
  } else if (c == '"') {
    p->at++;
    char *s = parse_string_body(p);
    if (s && (v = new_value(JSON_STRING))) v->string = s;
    else free(s);
  } else if (take_word(p, "true") || take_word(p, "false")) {
    if ((v = new_value(JSON_BOOL))) v->boolean = c == 't';
  } else if (take_word(p, "null")) {
    v = new_value(JSON_NULL);
  } else {
    v = parse_number(p);
  }
  return v;
}

json_value *json_parse(const uint8_t *text, size_t length) {
  parser p = {text, text + length, 0};
  json_value *v = parse_value(&p);
  skip_whitespace(&p);
  if (v && p.at != p.end) {
    json_free(v);
    return NULL;
  }
  return v;
}

void json_free(json_value *v) {
  if (!v) return;
  for (size_t i = 0; v->kind == JSON_ARRAY && i < v->count; i++) json_free(v->items[i]);
  for (size_t i = 0; v->kind == JSON_OBJECT && i < v->count; i++) {
    free(v->members[i].key);
    json_free(v->members[i].value);
  }
  free(v->items);
  free(v->members);
  free(v->string);
  free(v);
}

const json_value *json_get(const json_value *object, const char *key) {
  const json_value *found = NULL;
  for (size_t i = 0; object && object->kind == JSON_OBJECT && i < object->count; i++) {
    if (strcmp(object->members[i].key, key) == 0) found = object->members[i].value;
  }
  return found;
}
