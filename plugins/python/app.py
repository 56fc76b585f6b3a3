"""json-router, the inflow example mapping plugin in Python.

Reads a JSON body, drops it unless a numeric field passes a filter, and
publishes the original body to `<parent>/<body field>/<message property>`,
plus a copy to `<parent>/<fanout>/<body field>`, with MQTT 5 user properties.
The behaviour and the config are described in plugins/README.md; the Rust,
JavaScript and C plugins do the same.

Build: plugins/build.sh python (componentize-py, bindings generated from wit/).
"""

import json
from dataclasses import dataclass
from typing import List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import Payload_OriginalBody, Publish, Qos, RuleContext, UserProperty

QOS_LEVELS = {0: Qos.AT_MOST_ONCE, 1: Qos.AT_LEAST_ONCE, 2: Qos.EXACTLY_ONCE}
FILTER_SHAPE = 'config: "filter" must be an object {"field": string, "min": number, "max": number}'


@dataclass
class Filter:
    """Keeps a message only if `field` is a number within [min, max]."""

    field: str
    min: Optional[float] = None
    max: Optional[float] = None


@dataclass
class Config:
    parent_topic: str
    field: str = "device"
    property: str = "site"
    qos: Qos = Qos.AT_LEAST_ONCE
    filter: Optional[Filter] = None
    fanout: Optional[str] = None


def is_number(value) -> bool:
    # bool is an int subclass in Python; JSON true is not a number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_topic_level(text: str) -> bool:
    """A value usable as one MQTT topic level: not empty, no separator or wildcard."""
    return text != "" and not any(c in text for c in "/+#")


def reject_constant(name: str):
    # Python's json accepts NaN and Infinity; JSON does not.
    raise ValueError(name)


def parse_json(text):
    return json.loads(text, parse_constant=reject_constant)


def string_setting(value, key: str) -> str:
    if not isinstance(value, str) or value == "":
        raise Err(f'config: "{key}" must be a non-empty string')
    return value


def parse_filter(value) -> Filter:
    if not isinstance(value, dict):
        raise Err(FILTER_SHAPE)
    result = Filter(field="")
    for key, item in value.items():
        if key == "field" and isinstance(item, str):
            result.field = item
        elif key in ("min", "max") and is_number(item):
            setattr(result, key, float(item))
        else:
            raise Err(FILTER_SHAPE)
    if result.field == "":
        raise Err(FILTER_SHAPE)
    return result


def parse_config(parent_topic: str, text: str) -> Config:
    config = Config(parent_topic=parent_topic)
    if text.strip() == "":
        return config
    try:
        settings = parse_json(text)
    except ValueError:
        raise Err("config is not valid JSON")
    if not isinstance(settings, dict):
        raise Err("config must be a JSON object")
    for key, value in settings.items():
        if key == "field":
            config.field = string_setting(value, "field")
        elif key == "property":
            config.property = string_setting(value, "property")
        elif key == "qos":
            if not (isinstance(value, int) and not isinstance(value, bool) and value in QOS_LEVELS):
                raise Err('config: "qos" must be 0, 1 or 2')
            config.qos = QOS_LEVELS[value]
        elif key == "filter":
            config.filter = parse_filter(value)
        elif key == "fanout":
            level = string_setting(value, "fanout")
            if not is_topic_level(level):
                raise Err('config: "fanout" must be one topic level (no "/", "+" or "#")')
            config.fanout = level
        else:
            raise Err(f'config: unknown key "{key}"')
    return config


def filter_rejects(rule: Filter, body: dict) -> Optional[str]:
    """Why the filter drops this body, or None to keep it."""
    number = body.get(rule.field)
    if not is_number(number):
        return f'field "{rule.field}" is not a number'
    if (rule.min is not None and number < rule.min) or (rule.max is not None and number > rule.max):
        return f'field "{rule.field}" is out of range'
    return None


def route(config: Config, message: host.Message) -> List[Publish]:
    try:
        body = parse_json(message.body())
    except ValueError:  # includes UnicodeDecodeError
        raise Err("body is not valid JSON")
    if not isinstance(body, dict):
        raise Err("body is not a JSON object")

    if config.filter is not None:
        reason = filter_rejects(config.filter, body)
        if reason is not None:
            host.log(host.LogLevel.DEBUG, f"dropped message {message.message_id()}: {reason}")
            return []

    if config.field not in body:
        raise Err(f'body has no "{config.field}" field')
    device = body[config.field]
    if not isinstance(device, str) or device == "":
        raise Err(f'body field "{config.field}" must be a non-empty string')
    if not is_topic_level(device):
        raise Err(f'body field "{config.field}" value "{device}" is not a valid topic level')
    site = message.property(config.property)
    if site is None:
        raise Err(f'message has no property "{config.property}"')
    if not is_topic_level(site):
        raise Err(f'property "{config.property}" value "{site}" is not a valid topic level')

    user_properties = [
        UserProperty(config.field, device),
        UserProperty(config.property, site),
        UserProperty("rocketmq-topic", message.topic()),
        UserProperty("rocketmq-message-id", message.message_id()),
    ]

    def publish(topic: str) -> Publish:
        # The body goes out unchanged: the host sends its own copy.
        return Publish(topic, config.qos, False, Payload_OriginalBody(), user_properties,
                       "application/json", None)

    publishes = [publish(f"{config.parent_topic}/{device}/{site}")]
    if config.fanout is not None:
        publishes.append(publish(f"{config.parent_topic}/{config.fanout}/{device}"))
    return publishes


class Mapper(exports.Mapper):
    config: Optional[Config] = None

    def init(self, context: RuleContext, config: str) -> None:
        Mapper.config = parse_config(context.parent_topic, config)

    def map_message(self, message: host.Message) -> List[Publish]:
        if Mapper.config is None:
            raise Err("map-message called before init")
        return route(Mapper.config, message)
