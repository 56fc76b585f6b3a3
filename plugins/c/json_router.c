// json-router, the inflow example mapping plugin in C.
//
// Reads a JSON body, drops it unless a numeric field passes a filter, and
// publishes the original body to `<parent>/<body field>/<message property>`,
// plus a copy to `<parent>/<fanout>/<body field>`, with MQTT 5 user
// properties. The behaviour and the config are described in
// plugins/README.md; the Rust, Python and JavaScript plugins do the same.
//
// Build: plugins/build.sh c (bindings from `wit-bindgen c`, Debian clang +
// wasi-libc, `wasm-tools component new` with the preview1 reactor adapter).
//
// Memory, as the generated bindings expect it: arguments handed to an export
// belong to it and are freed here; strings and lists returned from an export
// must be malloc'd, the bindings free them after the host has copied them;
// results of host calls (body, property, ...) are ours to free; the borrowed
// message handle must be dropped before map-message returns.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mapping.h"

typedef inflow_mapping_host_borrow_message_t message_t;
typedef exports_inflow_mapping_mapper_publish_t publish_t;
typedef inflow_mapping_types_user_property_t user_property_t;

#define FILTER_SHAPE "config: \"filter\" must be an object {\"field\": string, \"min\": number, \"max\": number}"

// The rule's config, parsed once by init.
static struct {
  bool ready;
  char *parent_topic;
  char *field;
  char *property;
  inflow_mapping_types_qos_t qos;
  bool filter_on;  // keep a message only if filter_field is a number within [min, max]
  char *filter_field;
  double filter_min;  // -INFINITY when unset
  double filter_max;  // +INFINITY when unset
  char *fanout;       // NULL when unset
} config;

// printf into a new malloc'd string (NULL if memory runs out).
static char *format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(NULL, 0, fmt, args);
  va_end(args);
  char *text = n < 0 ? NULL : malloc((size_t)n + 1);
  if (text) {
    va_start(args, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, args);
    va_end(args);
  }
  return text;
}

static char *c_string(const mapping_string_t *s) {
  char *text = malloc(s->len + 1);
  if (text) {
    memcpy(text, s->ptr, s->len);
    text[s->len] = '\0';
  }
  return text;
}

// Hands a NUL-terminated malloc'd string to the bindings (they free it).
static mapping_string_t give(char *text) {
  return (mapping_string_t){(uint8_t *)text, text ? strlen(text) : 0};
}

static bool fail(mapping_string_t *err, char *reason) {
  *err = give(reason ? reason : format("out of memory"));
  return false;
}

// A value usable as one MQTT topic level: not empty, no separator or wildcard.
static bool is_topic_level(const char *text) { return text[0] != '\0' && !strpbrk(text, "/+#"); }

static char *string_setting(const json_value *value, const char *key, char **out) {
  if (value->kind != JSON_STRING || value->string[0] == '\0') {
    return format("config: \"%s\" must be a non-empty string", key);
  }
  free(*out);
  *out = strdup(value->string);
  return *out ? NULL : format("out of memory");
}

static char *parse_filter(const json_value *value) {
  if (value->kind != JSON_OBJECT) return format(FILTER_SHAPE);
  const json_value *field = NULL;
  config.filter_min = -INFINITY;
  config.filter_max = INFINITY;
  for (size_t i = 0; i < value->count; i++) {
    const char *key = value->members[i].key;
    const json_value *item = value->members[i].value;
    if (strcmp(key, "field") == 0 && item->kind == JSON_STRING) field = item;
    else if (strcmp(key, "min") == 0 && item->kind == JSON_NUMBER) config.filter_min = item->number;
    else if (strcmp(key, "max") == 0 && item->kind == JSON_NUMBER) config.filter_max = item->number;
    else return format(FILTER_SHAPE);
  }
  if (!field || field->string[0] == '\0') return format(FILTER_SHAPE);
  config.filter_on = true;
  free(config.filter_field);
  config.filter_field = strdup(field->string);
  return config.filter_field ? NULL : format("out of memory");
}

// Applies the config's settings; returns the error text, or NULL.
static char *apply_settings(const json_value *settings) {
  if (settings->kind != JSON_OBJECT) return format("config must be a JSON object");
  for (size_t i = 0; i < settings->count; i++) {
    const char *key = settings->members[i].key;
    const json_value *value = settings->members[i].value;
    char *error = NULL;
    if (strcmp(key, "field") == 0) {
      error = string_setting(value, "field", &config.field);
    } else if (strcmp(key, "property") == 0) {
      error = string_setting(value, "property", &config.property);
    } else if (strcmp(key, "qos") == 0) {
      if (value->kind != JSON_NUMBER || !(value->number == 0 || value->number == 1 || value->number == 2)) {
        return format("config: \"qos\" must be 0, 1 or 2");
      }
      config.qos = (inflow_mapping_types_qos_t)value->number;
    } else if (strcmp(key, "filter") == 0) {
      error = parse_filter(value);
    } else if (strcmp(key, "fanout") == 0) {
      error = string_setting(value, "fanout", &config.fanout);
      if (!error && !is_topic_level(config.fanout)) {
        error = format("config: \"fanout\" must be one topic level (no \"/\", \"+\" or \"#\")");
      }
    } else {
      return format("config: unknown key \"%s\"", key);
    }
    if (error) return error;
  }
  return NULL;
}

static void reset_config(void) {
  free(config.parent_topic);
  free(config.field);
  free(config.property);
  free(config.filter_field);
  free(config.fanout);
  memset(&config, 0, sizeof config);
  config.qos = INFLOW_MAPPING_TYPES_QOS_AT_LEAST_ONCE;
}

bool exports_inflow_mapping_mapper_init(exports_inflow_mapping_mapper_rule_context_t *context,
                                        mapping_string_t *text, mapping_string_t *err) {
  reset_config();
  config.parent_topic = c_string(&context->parent_topic);
  config.field = strdup("device");
  config.property = strdup("site");
  char *error = NULL;
  if (!config.parent_topic || !config.field || !config.property) error = format("out of memory");

  size_t start = 0;  // an empty or blank config means all defaults
  while (start < text->len && strchr(" \t\r\n", text->ptr[start])) start++;
  if (!error && start < text->len) {
    json_value *settings = json_parse(text->ptr, text->len);
    error = settings ? apply_settings(settings) : format("config is not valid JSON");
    json_free(settings);
  }
  exports_inflow_mapping_mapper_rule_context_free(context);
  mapping_string_free(text);
  if (error) return fail(err, error);
  config.ready = true;
  return true;
}

// Why the filter drops this body, or NULL to keep it (malloc'd text).
static char *filter_rejects(const json_value *body) {
  const json_value *number = json_get(body, config.filter_field);
  if (!number || number->kind != JSON_NUMBER) return format("field \"%s\" is not a number", config.filter_field);
  if (number->number < config.filter_min || number->number > config.filter_max) {
    return format("field \"%s\" is out of range", config.filter_field);
  }
  return NULL;
}

static void host_log(inflow_mapping_host_log_level_t level, char *line) {
  if (!line) return;
  mapping_string_t text = give(line);
  inflow_mapping_host_log(level, &text);
  free(line);
}

static char *host_string(message_t message, void (*getter)(message_t, mapping_string_t *)) {
  mapping_string_t s;
  getter(message, &s);
  char *text = c_string(&s);
  mapping_string_free(&s);
  return text;
}

static publish_t make_publish(char *topic, const user_property_t *properties, size_t count) {
  publish_t p = {0};
  p.topic = give(topic);
  p.qos = config.qos;
  p.retain = false;
  // The body goes out unchanged: the host sends its own copy.
  p.payload.tag = INFLOW_MAPPING_TYPES_PAYLOAD_ORIGINAL_BODY;
  p.user_properties.ptr = malloc(count * sizeof *properties);
  if (p.user_properties.ptr) {
    p.user_properties.len = count;
    for (size_t i = 0; i < count; i++) {
      mapping_string_dup(&p.user_properties.ptr[i].key, (const char *)properties[i].key.ptr);
      mapping_string_dup(&p.user_properties.ptr[i].value, (const char *)properties[i].value.ptr);
    }
  }
  p.content_type.is_some = true;
  mapping_string_dup(&p.content_type.val, "application/json");
  return p;
}

// Routes a parsed body; returns the error text, or NULL with `ret` filled.
static char *route(message_t message, const json_value *body, exports_inflow_mapping_mapper_list_publish_t *ret) {
  if (body->kind != JSON_OBJECT) return format("body is not a JSON object");

  if (config.filter_on) {
    char *reason = filter_rejects(body);
    if (reason) {
      char *id = host_string(message, inflow_mapping_host_method_message_message_id);
      host_log(INFLOW_MAPPING_HOST_LOG_LEVEL_DEBUG, format("dropped message %s: %s", id ? id : "?", reason));
      free(id);
      free(reason);
      return NULL;  // zero publishes: the message is dropped
    }
  }

  const json_value *device = json_get(body, config.field);
  if (!device) return format("body has no \"%s\" field", config.field);
  if (device->kind != JSON_STRING || device->string[0] == '\0') {
    return format("body field \"%s\" must be a non-empty string", config.field);
  }
  if (!is_topic_level(device->string)) {
    return format("body field \"%s\" value \"%s\" is not a valid topic level", config.field, device->string);
  }
  mapping_string_t key = {(uint8_t *)config.property, strlen(config.property)}, value;
  if (!inflow_mapping_host_method_message_property(message, &key, &value)) {
    return format("message has no property \"%s\"", config.property);
  }
  char *site = c_string(&value);
  mapping_string_free(&value);
  char *topic = host_string(message, inflow_mapping_host_method_message_topic);
  char *id = host_string(message, inflow_mapping_host_method_message_message_id);
  char *error = NULL;
  if (!site || !topic || !id) {
    error = format("out of memory");
  } else if (!is_topic_level(site)) {
    error = format("property \"%s\" value \"%s\" is not a valid topic level", config.property, site);
  } else {
    const user_property_t properties[] = {
        {give(config.field), give(device->string)},
        {give(config.property), give(site)},
        {give("rocketmq-topic"), give(topic)},
        {give("rocketmq-message-id"), give(id)},
    };
    size_t count = config.fanout ? 2 : 1;
    ret->ptr = calloc(count, sizeof *ret->ptr);
    if (!ret->ptr) {
      error = format("out of memory");
    } else {
      ret->len = count;
      ret->ptr[0] = make_publish(format("%s/%s/%s", config.parent_topic, device->string, site), properties, 4);
      if (config.fanout) {
        ret->ptr[1] = make_publish(format("%s/%s/%s", config.parent_topic, config.fanout, device->string),
                                   properties, 4);
      }
    }
  }
  free(site);
  free(topic);
  free(id);
  return error;
}

bool exports_inflow_mapping_mapper_map_message(exports_inflow_mapping_mapper_borrow_message_t message,
                                               exports_inflow_mapping_mapper_list_publish_t *ret,
                                               mapping_string_t *err) {
  *ret = (exports_inflow_mapping_mapper_list_publish_t){0};
  char *error = NULL;
  if (config.ready) {
    mapping_list_u8_t bytes;
    inflow_mapping_host_method_message_body(message, &bytes);
    json_value *body = json_parse(bytes.ptr, bytes.len);
    mapping_list_u8_free(&bytes);
    error = body ? route(message, body, ret) : format("body is not valid JSON");
    json_free(body);
  } else {
    error = format("map-message called before init");
  }
  // The component model requires a borrowed handle to be dropped before the
  // export returns (the host traps otherwise); the C bindings leave it to us.
  inflow_mapping_host_message_drop_borrow(message);
  if (error) {
    exports_inflow_mapping_mapper_list_publish_free(ret);
    return fail(err, error);
  }
  return true;
}
