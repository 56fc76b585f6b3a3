"""{{name}}: an inflow mapping plugin. Publishes each message's body unchanged to
`<parent topic>/<tag>`; a message without a tag is refused."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import Payload_OriginalBody, Publish, Qos, RuleContext


class Mapper(exports.Mapper):
    """The exported interface; the class is named after it."""

    parent = ""

    def init(self, context: RuleContext, config: str) -> None:
        Mapper.parent = context.parent_topic

    def map_message(self, message: host.Message) -> list[Publish]:
        tag = message.tags()
        if tag is None:
            raise Err("message has no tag")  # the error case of the result; any other exception traps
        # Payload_OriginalBody: the body goes out unchanged, the host sends its own copy.
        return [Publish(f"{Mapper.parent}/{tag}", Qos.AT_LEAST_ONCE, False, Payload_OriginalBody(), [], None, None)]
