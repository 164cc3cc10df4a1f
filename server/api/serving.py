"""The gRPC health service follows the store: a replica whose store cannot answer says NOT_SERVING, so load
balancers (and the edge's round_robin) send its calls elsewhere until the store answers again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2

from server.errors import ServiceError
from server.store import Store

log = logging.getLogger("server.api.serving")

# How often the store is probed for the health service, and how long one probe may take: a store that
# fails or hangs turns health NOT_SERVING within about the sum of the two.
STORE_PROBE_INTERVAL_S = 3.0
STORE_PROBE_TIMEOUT_S = 5.0


async def watch_store(
    store: Store,
    health: health_async.HealthServicer,
    names: Sequence[str],
    *,
    interval_s: float = STORE_PROBE_INTERVAL_S,
    timeout_s: float = STORE_PROBE_TIMEOUT_S,
) -> None:
    """Health follows the store: NOT_SERVING (for "" and every service) while a cheap read fails or takes longer
    than ``timeout_s``, SERVING again after the first one that answers. Each change is logged once."""
    serving = True
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.wait_for(store.get_workspace(""), timeout_s)  # a primary-key miss: no rows read
            problem = ""
        except TimeoutError:
            problem = f"no answer within {timeout_s:g} s"
        except ServiceError as error:
            problem = f"{error.message} ({error.detail})" if error.detail else error.message
        except Exception as error:  # whatever it is, the store cannot serve calls now
            problem = str(error) or type(error).__name__
        if serving == (not problem):
            continue
        serving = not problem
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in names:
            await health.set(name, status)
        if serving:
            log.info("store answers again: health SERVING")
        else:
            log.warning("store unusable, health NOT_SERVING: %s", problem)
