"""What the route modules share: path parameters, the dispatcher dependency, paging, and
the shapes several audiences answer with."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter

from dispatcher import ops
from dispatcher.api import AsyncDispatcher
from dispatcher.keys import ID_PATTERN, TEAM_ID_PATTERN
from dispatcher.model import Message, Stock
from httpapi.schemas import ChannelOut, IngestResult, StockOut

__all__ = ["ADV", "DISPATCHER", "PAGED", "TEAM", "Cursor", "DispatcherDep", "Limit", "TeamId",
           "TeamPath",
           "ingest_result", "paged", "stock_out"]

TEAM = "/v1/teams/{team:str}"
ADV = TEAM + "/advisors/{advisor:str}"

TeamId = Annotated[str, Parameter(pattern=ID_PATTERN)]
TeamPath = Annotated[str, Parameter(pattern=TEAM_ID_PATTERN)]
Cursor = Annotated[str | None, Parameter(
    required=False, max_length=9, pattern=r"^[0-9]{1,9}(?![\s\S])",
    description="From the `Link: <…>; rel=\"next\"` header of the previous page")]
Limit = Annotated[int, Parameter(ge=1, le=ops.PAGE_MAX, description="Messages per page")]
PAGED = ("Paged: at most `limit` messages (default and maximum 1,000); when more follow, "
         "the `Link` header names the next page (`rel=\"next\"`).")


def _dispatcher(state: State) -> AsyncDispatcher:
    d: AsyncDispatcher = state.d
    return d


#: Every controller's `d`: the process's AsyncDispatcher (made at start-up).
DISPATCHER = {"d": Provide(_dispatcher, sync_to_thread=False)}
#: How a handler asks for it (a marked dependency: Litestar 3 stops inferring them).
DispatcherDep = NamedDependency[AsyncDispatcher]


def paged(request: Request[Any, Any, Any], page: ops.Page) -> Response[list[Message]]:
    if page.next_cursor is None:
        return Response(page.items)
    query = dict(request.query_params)
    query["cursor"] = page.next_cursor
    link = str(request.url.with_replacements(query=urlencode(query)))
    return Response(page.items, headers={"Link": f'<{link}>; rel="next"'})


def stock_out(stock: Stock) -> StockOut:
    return StockOut(stock.total, [ChannelOut(c.channel, c.waiting, c.oldest_age_s)
                                  for c in stock.channels])


def ingest_result(msg_id: str, result: str) -> IngestResult:
    kind, _, advisor = result.partition(":")
    return IngestResult(msg_id, kind, advisor or None)  # type: ignore[arg-type]
