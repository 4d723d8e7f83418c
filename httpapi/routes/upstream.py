"""Upstream services: messages in, customers' tags."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, post, put
from litestar.openapi.spec import Example
from litestar.params import Body, JSONBody

from dispatcher import defaults, ops
from dispatcher.errors import TooLargeError
from httpapi.auth import INGEST
from httpapi.common import TEAM, DispatcherDep, TeamId, TeamPath, ingest_result
from httpapi.problems import errors
from httpapi.routes import Audience
from httpapi.schemas import (
    CustomerTagsIn,
    CustomerTagsOut,
    IngestResult,
    MessageBatchIn,
    MessageBatchOut,
    MessageIn,
)

__all__ = ["MESSAGE_EXAMPLE", "UpstreamController"]

MESSAGE_EXAMPLE = {
    "id": "wa-1001", "conversation": "conv-77", "customer": "cust-42", "channel": "whatsapp",
    "body": {"text": "Hello, my parcel has not arrived"}, "language": "en",
    "customer_tags": ["VIP"],
}


class UpstreamController(Audience):
    path = TEAM
    tags = ["upstream"]
    opt = INGEST

    @post("/messages", status_code=202, responses=errors(413, 429),
          summary="Ingest one message (idempotent by id)",
          request_max_body_size=defaults.MAX_BODY_BYTES + 16 * 1024)
    async def ingest_one(
        self, d: DispatcherDep, team: TeamPath,
        data: Annotated[MessageIn, Body(examples=[Example("message", value=MESSAGE_EXAMPLE)])],
    ) -> IngestResult:
        result = await d.run(ops.ingest_one(team, msgspec.structs.asdict(data)))
        return ingest_result(data.id, result)

    @post("/messages/batch", status_code=202, responses=errors(413, 429),
          summary="Ingest a batch atomically (each message idempotent by id)",
          request_max_body_size=defaults.INGEST_BATCH_MAX_BYTES)
    async def ingest_batch(self, request: Request[Any, Any, Any], d: DispatcherDep,
                           team: TeamPath, data: JSONBody[MessageBatchIn]) -> MessageBatchOut:
        limit = request.app.state.config.max_batch
        if len(data.messages) > limit:
            raise TooLargeError(f"a batch holds at most {limit} messages", field="messages")
        results = await d.run(
            ops.ingest_many(team, [msgspec.structs.asdict(m) for m in data.messages]))
        return MessageBatchOut([ingest_result(m.id, r)
                                for m, r in zip(data.messages, results, strict=True)])

    @put("/customers/{customer:str}/tags", responses=errors(),
         summary="A customer's tags changed")
    async def customer_tags(self, d: DispatcherDep, team: TeamPath, customer: TeamId,
                            data: JSONBody[CustomerTagsIn]) -> CustomerTagsOut:
        moved = await d.run(ops.set_customer_tags(team, customer, data.tags))
        return CustomerTagsOut(customer, moved)
