// {{name}}: an inflow mapping plugin. Publishes each message's body unchanged to
// `<parent topic>/<tag>`; a message without a tag is refused.
//
// Memory: the arguments and what host calls return are ours to free; what we return
// must be malloc'd (the host frees it).

#define _GNU_SOURCE  // asprintf, when the unit test builds this with glibc
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping.h"

static char *parent;

bool exports_inflow_mapping_mapper_init(exports_inflow_mapping_mapper_rule_context_t *context,
                                        mapping_string_t *config, mapping_string_t *err) {
  (void)err;
  free(parent);
  parent = strndup((const char *)context->parent_topic.ptr, context->parent_topic.len);
  exports_inflow_mapping_mapper_rule_context_free(context);
  mapping_string_free(config);
  return true;
}

bool exports_inflow_mapping_mapper_map_message(exports_inflow_mapping_mapper_borrow_message_t message,
                                               exports_inflow_mapping_mapper_list_publish_t *ret,
                                               mapping_string_t *err) {
  mapping_string_t tag;
  bool has_tag = inflow_mapping_host_method_message_tags(message, &tag);
  inflow_mapping_host_message_drop_borrow(message);  // required before returning
  if (!has_tag) {
    mapping_string_dup(err, "message has no tag");
    return false;
  }
  char *topic;
  if (asprintf(&topic, "%s/%.*s", parent, (int)tag.len, (const char *)tag.ptr) < 0) abort();
  mapping_string_free(&tag);
  ret->ptr = calloc(1, sizeof *ret->ptr);
  ret->len = 1;
  ret->ptr[0].topic = (mapping_string_t){(uint8_t *)topic, strlen(topic)};
  ret->ptr[0].qos = INFLOW_MAPPING_TYPES_QOS_AT_LEAST_ONCE;
  // The body goes out unchanged: the host sends its own copy.
  ret->ptr[0].payload.tag = INFLOW_MAPPING_TYPES_PAYLOAD_ORIGINAL_BODY;
  return true;
}
